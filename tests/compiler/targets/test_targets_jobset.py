"""operator: jobset (the default) and Kueue: the JobSet against the upstream CRD (tests/data/jobset/), its job
template against Kubernetes' own Job schema, its TF_CONFIG contract, the Kueue labels of every operator and
the training object the Argo workflow launches (``training_resource``)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tfspec.compiler.pipeline import CompileResult
from tfspec.compiler.targets.gpu_cluster import (
    JOBSET_NAME_LABEL,
    KUEUE_PRIORITY_LABEL,
    KUEUE_QUEUE_LABEL,
    TFJOB_WARNING,
    training_resource,
)
from tfspec.base.tf_config import ENV_TF_CONFIG, jobset_hosts, tf_config_for, tf_config_from_environment
from tfspec.spec.targets import GpuClusterTarget

from targets_testing import (REPO, VARIANTS, compile_tree, example_tree, expand_kubernetes_references,
                             pod_environment, run_tool, target_of, tool)
from oracles import argo as argo_oracle
from oracles import kubeflow as kubeflow_oracle
from tfspec_testing import jobset_child_job

CRD = REPO / "tests" / "data" / "jobset" / "jobset.x-k8s.io_jobsets.yaml"
JOBSET = "cluster/kubernetes/jobset.yaml"
KUBERNETES_VERSION = "1.37.0"


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it with strict field validation: unknown fields rejected."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema and \
                not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the file is 800 KB
    crd = next(d for d in yaml.load_all(CRD.read_text("utf-8"), Loader=loader) if d)
    assert crd["spec"]["names"]["kind"] == "JobSet" and crd["spec"]["group"] == "jobset.x-k8s.io"
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha2")
    return jsonschema.Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))


def _jobsets(builds: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    return {build: yaml.safe_load(files[JOBSET]) for build, files in sorted(builds.items()) if JOBSET in files}


def _compile(tmp_path: Path, mutate, name: str = "spec") -> CompileResult:
    tree = copy.deepcopy(example_tree())
    mutate(tree)
    result = compile_tree(tree, tmp_path / name)
    assert result.ok, [d.format() for d in result.diagnostics]
    return result


def test_the_default_operator_is_jobset(builds: dict[str, dict[str, str]]) -> None:
    assert GpuClusterTarget.model_fields["operator"].default == "jobset"
    files = builds["example"]
    assert JOBSET in files and "cluster/kubernetes/tfjob.yaml" not in files
    assert yaml.safe_load(files["cluster/kubernetes/kustomization.yaml"])["resources"] == [
        "persistentvolumeclaim.yaml", "jobset.yaml"]


def test_every_jobset_matches_the_upstream_crd(builds: dict[str, dict[str, str]],
                                                validator: jsonschema.Draft7Validator) -> None:
    jobsets = _jobsets(builds)
    assert {"example", "example-prod", "jobset-kueue"} <= set(jobsets)
    for build, jobset in jobsets.items():
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(jobset)]
        assert not errors, f"{build}: {errors}"
        assert jobset["apiVersion"] == "jobset.x-k8s.io/v1alpha2" and jobset["kind"] == "JobSet"


def test_the_crd_schema_rejects_unknown_mistyped_and_missing_fields(builds: dict[str, dict[str, str]],
                                                                     validator: jsonschema.Draft7Validator) -> None:
    jobset = _jobsets(builds)["example"]
    unknown = copy.deepcopy(jobset)
    unknown["spec"]["network"]["enableDnsHostnames"] = True  # the field is enableDNSHostnames
    assert list(validator.iter_errors(unknown))
    deep = copy.deepcopy(jobset)  # the pod spec is checked too (the CRD embeds the core/v1 schema)
    deep["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy2"] = "x"
    assert list(validator.iter_errors(deep))
    mistyped = copy.deepcopy(jobset)
    mistyped["spec"]["failurePolicy"]["maxRestarts"] = "three"
    assert list(validator.iter_errors(mistyped))
    bad_enum = copy.deepcopy(jobset)
    bad_enum["spec"]["successPolicy"]["operator"] = "Chief"
    assert list(validator.iter_errors(bad_enum))
    missing = copy.deepcopy(jobset)
    del missing["spec"]["replicatedJobs"][0]["template"]
    assert list(validator.iter_errors(missing))


def test_the_jobs_of_every_jobset_pass_kubernetes_validate(build_root: Path, tmp_path: Path) -> None:
    # kubernetes-validate knows no CRD: the Job the JobSet controller makes of the template is checked
    # against Kubernetes' own batch/v1 schema, strictly (the rest of the folder by test_targets_kubernetes).
    paths = []
    for path in sorted(build_root.glob("*/cluster/kubernetes/jobset.yaml")):
        job = jobset_child_job(yaml.safe_load(path.read_text("utf-8")))
        paths.append(tmp_path / f"{path.parts[-4]}-job.yaml")
        paths[-1].write_text(yaml.safe_dump(job), encoding="utf-8")
    assert len(paths) >= 3
    result = run_tool([tool("kubernetes-validate"), "--strict", "--no-warn", "-k", KUBERNETES_VERSION, *map(str, paths)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_jobset_of_the_example(builds: dict[str, dict[str, str]]) -> None:
    jobset = _jobsets(builds)["example"]
    spec = jobset["spec"]
    assert spec["network"] == {"enableDNSHostnames": True, "publishNotReadyAddresses": True}
    (replicated,) = spec["replicatedJobs"]
    assert replicated["name"] == "worker" and replicated["replicas"] == 1
    job = replicated["template"]["spec"]
    assert job["completionMode"] == "Indexed" and job["completions"] == job["parallelism"] == 4
    # A failed worker fails the Job at once; the JobSet restarts every worker, old pods gone first.
    assert job["backoffLimit"] == 0
    assert spec["failurePolicy"] == {"maxRestarts": 3, "restartStrategy": "BlockingRecreate"}
    # Success: the Job once the chief (index 0) succeeded, the JobSet once that Job did.
    assert job["successPolicy"] == {"rules": [{"succeededIndexes": "0"}]}
    assert spec["successPolicy"] == {"operator": "Any", "targetReplicatedJobs": ["worker"]}
    assert spec["ttlSecondsAfterFinished"] == 86400
    assert "suspend" not in spec  # Kueue's webhook suspends; a re-apply must not suspend a running job
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "digits-cluster-data"}} in pod["volumes"]
    assert {"name": "data", "mountPath": "/workspace"} in container["volumeMounts"]
    assert "subdomain" not in pod  # the controller sets it (to the JobSet's name)
    assert "priorityClassName" not in pod and KUEUE_QUEUE_LABEL not in jobset["metadata"]["labels"]


@pytest.mark.parametrize("build, workers, port", [("example", 4, 2222), ("jobset-kueue", 3, 23456)])
def test_jobset_pods_derive_the_cluster_from_their_stable_dns_names(builds: dict[str, dict[str, str]], build: str,
                                                                     workers: int, port: int) -> None:
    jobset = _jobsets(builds)[build]
    name = jobset["metadata"]["name"]
    job = jobset_child_job(jobset)
    assert job["metadata"]["name"] == f"{name}-worker-0"
    subdomain = job["spec"]["template"]["spec"]["subdomain"]
    hosts = jobset_hosts(name, "worker", subdomain, workers, port)
    # <jobset>-<replicated job>-<job index>-<pod index>.<subdomain>: what JobSet documents, what an
    # Indexed Job pod's hostname (<job>-<completion index>) is under the JobSet's headless Service.
    assert hosts == [f"{name}-worker-0-{i}.{name}:{port}" for i in range(workers)]
    for index in range(workers):
        env = pod_environment(job, index)
        assert ENV_TF_CONFIG not in env
        assert tf_config_from_environment(env) == tf_config_for(hosts, index)


def test_jobset_worker_hosts_survive_a_name_prefix(build_root: Path, tmp_path: Path) -> None:
    shutil.copytree(build_root / "jobset-kueue" / "cluster" / "kubernetes", tmp_path / "base")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namePrefix": "team-a-", "resources": ["../base"]}))
    result = run_tool([tool("kubectl"), "kustomize", str(overlay)])
    assert result.returncode == 0, result.stderr
    (jobset,) = [d for d in yaml.safe_load_all(result.stdout) if d]
    name = jobset["metadata"]["name"]
    assert name.startswith("team-a-digits-cluster-") and jobset["metadata"]["namespace"] == "ml-training"
    job = jobset_child_job(jobset)
    config = tf_config_from_environment(pod_environment(job, 2))
    assert config["cluster"]["worker"][2] == f"{name}-worker-0-2.{name}:23456"


def test_kueue_queue_and_priorities_on_the_jobset(builds: dict[str, dict[str, str]]) -> None:
    jobset = _jobsets(builds)["jobset-kueue"]
    labels = jobset["metadata"]["labels"]
    assert labels[KUEUE_QUEUE_LABEL] == "team-a" and labels[KUEUE_PRIORITY_LABEL] == "production"
    job = jobset["spec"]["replicatedJobs"][0]["template"]
    pod = job["spec"]["template"]
    assert pod["spec"]["priorityClassName"] == "high-priority"
    # Kueue reads the queue from the JobSet; the pods keep only the app labels.
    assert KUEUE_QUEUE_LABEL not in pod["metadata"]["labels"]
    assert "suspend" not in jobset["spec"]
    assert jobset["spec"]["failurePolicy"]["maxRestarts"] == 5
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "shared-training-data"}} in pod["spec"]["volumes"]


def test_the_workers_account_and_pull_secrets(builds: dict[str, dict[str, str]]) -> None:
    """A cloud identity (IRSA, Workload Identity) through the workers' ServiceAccount, whose API token stays
    unmounted; a private registry through imagePullSecrets. Without them, the pods name neither."""
    pod = _jobsets(builds)["jobset-kueue"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "trainer" and pod["automountServiceAccountToken"] is False
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    plain = _jobsets(builds)["example"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert "serviceAccountName" not in plain and "imagePullSecrets" not in plain


@pytest.mark.parametrize("operator, path", [("indexed_job", "cluster/kubernetes/job.yaml"),
                                            ("tfjob", "cluster/kubernetes/tfjob.yaml")])
def test_kueue_labels_on_the_other_operators(tmp_path: Path, operator: str, path: str) -> None:
    def queued(tree: dict[str, Any]) -> None:
        target_of(tree, "cluster").update(operator=operator, queue={"name": "team-b", "priority_class": "batch-low"})

    document = yaml.safe_load(_compile(tmp_path, queued).files[path])
    assert document["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "team-b"
    assert KUEUE_PRIORITY_LABEL not in document["metadata"]["labels"]
    template = (document["spec"]["template"] if operator == "indexed_job"
                else document["spec"]["tfReplicaSpecs"]["Worker"]["template"])
    assert template["spec"]["priorityClassName"] == "batch-low"
    assert KUEUE_QUEUE_LABEL not in template["metadata"]["labels"]


def test_a_changed_queue_is_a_new_jobset(tmp_path: Path) -> None:
    def queued(name: str):
        return lambda tree: target_of(tree, "cluster").update(queue={"name": name})

    first = yaml.safe_load(_compile(tmp_path, queued("team-a"), "a").files[JOBSET])["metadata"]["name"]
    again = yaml.safe_load(_compile(tmp_path, queued("team-a"), "b").files[JOBSET])["metadata"]["name"]
    other = yaml.safe_load(_compile(tmp_path, queued("team-b"), "c").files[JOBSET])["metadata"]["name"]
    assert first == again != other


TFJOB_FAILED = ",".join(f"status.conditions.{i}.type == Failed" for i in range(6))


@pytest.mark.parametrize("operator, path, success, failure", [
    ("jobset", "jobset.yaml", "status.terminalState == Completed", "status.terminalState == Failed"),
    ("indexed_job", "job.yaml", "status.succeeded == 4", "status.failed > 0"),
    ("tfjob", "tfjob.yaml", "status.completionTime", TFJOB_FAILED),
])
def test_training_resource_is_the_rendered_object_with_argo_conditions(tmp_path: Path, operator: str, path: str,
                                                                       success: str, failure: str) -> None:
    result = _compile(tmp_path, lambda tree: target_of(tree, "cluster").update(operator=operator))
    assert result.resolved is not None
    target = next(t for t in result.resolved.spec.targets if t.name == "cluster")
    training = training_resource(result.resolved, target)
    assert training.manifest == yaml.safe_load(result.files[f"cluster/kubernetes/{path}"])
    assert "namespace" not in training.manifest["metadata"]
    assert (training.success, training.failure) == (success, failure)
    assert (training.claim, training.mount_path) == ("digits-cluster-data", "/workspace")


def _conditions(tmp_path: Path, operator: str) -> tuple[str, str]:
    result = _compile(tmp_path, lambda tree: target_of(tree, "cluster").update(operator=operator), operator)
    assert result.resolved is not None
    target = next(t for t in result.resolved.spec.targets if t.name == "cluster")
    training = training_resource(result.resolved, target)
    return training.success, training.failure


@pytest.mark.parametrize("history", sorted(kubeflow_oracle.status_histories(4)))
def test_tfjob_conditions_follow_the_tfjobs_own_success_and_failure(tmp_path: Path, history: str) -> None:
    """Every status the training operator writes in each history (tests/oracles/kubeflow.py, from its
    source) polled the way Argo's executor does (tests/oracles/argo.py): the step waits while the TFJob
    runs, however its workers come and go, and ends with the TFJob's own verdict. The worker counts the
    conditions used before misjudge six of the seven histories: a worker other than the chief succeeding
    first, a replaced pod counted failed for one update, a TFJob past its backoff limit (no pod left to
    count failed)."""
    success, failure = _conditions(tmp_path, "tfjob")
    for index, (tfjob, state) in enumerate(kubeflow_oracle.status_histories(4)[history]):
        verdict = argo_oracle.resource_verdict(tfjob, success, failure)
        assert verdict == {"running": "waiting"}.get(state, state), (history, index, tfjob["status"])


def test_every_training_condition_is_one_argo_parses(tmp_path: Path) -> None:
    """Argo parses the conditions as Kubernetes label selectors: a key cannot query a list by a field
    (gjson's #(...)), so such a condition would fail every run at its first poll."""
    for operator in ("jobset", "indexed_job", "tfjob"):
        for condition in _conditions(tmp_path, operator):
            assert argo_oracle.parse_selector(condition), (operator, condition)
    with pytest.raises(ValueError):
        argo_oracle.parse_selector('status.conditions.#(type=="Failed").status == True')


def test_training_resource_is_what_kustomize_emits_in_the_targets_namespace(tmp_path: Path) -> None:
    result = _compile(tmp_path, VARIANTS["jobset-kueue"])
    assert result.resolved is not None
    target = next(t for t in result.resolved.spec.targets if t.name == "cluster")
    document = training_resource(result.resolved, target).manifest
    base = tmp_path / "kubernetes"
    base.mkdir()
    for path, text in result.files.items():
        if path.startswith("cluster/kubernetes/"):
            (base / path.rsplit("/", 1)[1]).write_text(text, encoding="utf-8")
    emitted = run_tool([tool("kubectl"), "kustomize", str(base)])
    assert emitted.returncode == 0, emitted.stderr
    (jobset,) = [d for d in yaml.safe_load_all(emitted.stdout) if d and d["kind"] == "JobSet"]
    assert document == jobset and document["metadata"]["namespace"] == "ml-training"


def test_tfjob_gets_a_build_warning_and_jobset_none(tmp_path: Path, example_result: CompileResult) -> None:
    result = _compile(tmp_path, lambda tree: target_of(tree, "cluster").update(operator="tfjob"))
    # (the example's serving image names no registry: that target's own warning)
    (warning,) = [w for w in result.warnings if w.path.startswith("targets[2]")]
    assert (warning.path, warning.message) == ("targets[2].operator", f"warning: {TFJOB_WARNING}")
    assert warning.line > 0 and warning.file.endswith("deploy.yaml")
    assert not [w for w in example_result.warnings if w.path.startswith("targets[2]")]


def test_tfjob_warning_is_printed_by_tfspec_build(tmp_path: Path) -> None:
    from tfspec_testing import tfspec_command

    tree = copy.deepcopy(example_tree())
    target_of(tree, "cluster")["operator"] = "tfjob"
    spec = tmp_path / "deploy.yaml"
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    completed = run_tool([*tfspec_command(), "build", str(spec), "--out", str(tmp_path / "out")])
    assert completed.returncode == 0, completed.stderr
    assert "Training Operator 1.9" in completed.stderr and "Traceback" not in completed.stderr
    assert (tmp_path / "out" / "cluster" / "kubernetes" / "tfjob.yaml").is_file()


def test_jobset_names_must_begin_with_a_letter_and_stay_short(tmp_path: Path) -> None:
    tree = copy.deepcopy(example_tree())
    tree["name"] = "3digits"
    result = compile_tree(tree, tmp_path / "digit")
    # one line at the name: the Services (serving, JobSet, an Indexed Job's) are DNS-1035 labels
    assert [(d.path, d.message.split(" is not")[0]) for d in result.diagnostics] == [
        ("name", "Service name '3digits-serving'")]
    indexed = copy.deepcopy(tree)
    target_of(indexed, "cluster")["operator"] = "indexed_job"
    assert [d.path for d in compile_tree(indexed, tmp_path / "indexed").diagnostics] == ["name"]
    long = copy.deepcopy(example_tree())
    long["name"] = "d" * 30  # "<name>-cluster-<hash>-worker-0-3-xxxxx" is 64 characters
    result = compile_tree(long, tmp_path / "long")
    assert [d.message for d in result.diagnostics] == [
        f"JobSet worker pod name '{'d' * 30}-cluster-<hash>-worker-0-3-<random>' would be 64 characters long, "
        "more than the 63 of a DNS-1035 label"]
    long["name"] = "d" * 29
    assert compile_tree(long, tmp_path / "fits").ok


def test_the_worker_environment_expands_like_the_kubelet(builds: dict[str, dict[str, str]]) -> None:
    jobset = _jobsets(builds)["example"]
    (container,) = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["TFSPEC_JOBSET_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.labels['{JOBSET_NAME_LABEL}']"
    hosts = expand_kubernetes_references(env["TFSPEC_WORKER_HOSTS"]["value"], {"TFSPEC_JOBSET_NAME": "js"})
    assert hosts == ",".join(f"js-worker-0-{i}.js:2222" for i in range(4))
