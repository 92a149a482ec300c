"""Issue 17: what the validators cannot see — checks that a generated file works on a real cluster and in a
real rollout (image tags, scheduling, drain, threads, spread, versions, disruption, Job names and DNS)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tfspec.compiler.pipeline import CompileResult
from tfspec.base.tf_config import tf_config_from_environment

from targets_testing import compile_tree, example_tree, pod_environment, run_tool, target_of, tool

DEPLOYMENT = "serving/kubernetes/deployment.yaml"


def _build(tmp_path: Path, change: Any = None, name: str = "spec") -> CompileResult:
    tree = copy.deepcopy(example_tree())
    if change is not None:
        change(tree)
    return compile_tree(tree, tmp_path / name)


def _ok(result: CompileResult) -> dict[str, str]:
    assert result.ok, "\n".join(str(d) for d in result.diagnostics)
    return result.files


def _errors(result: CompileResult) -> list[tuple[str, str]]:
    assert not result.ok
    return [(d.path, d.message) for d in result.diagnostics]


def _container(files: dict[str, str]) -> dict[str, Any]:
    """The TF Serving container (the first; an s3:// store adds the one that copies it)."""
    return yaml.safe_load(files[DEPLOYMENT])["spec"]["template"]["spec"]["containers"][0]


def _pod(files: dict[str, str]) -> dict[str, Any]:
    return yaml.safe_load(files[DEPLOYMENT])["spec"]["template"]["spec"]


def _dockerfile_tag(files: dict[str, str], target: str) -> str:
    (tag,) = re.findall(r"^#   docker build -t (\S+) \.$", files[f"{target}/Dockerfile"], re.MULTILINE)
    return tag


# 1. Image names unique per target, tags derived from the served content, digests allowed.

def _cpu_and_gpu(tree: dict[str, Any]) -> None:
    gpu = copy.deepcopy(target_of(tree, "serving"))
    gpu["name"] = "serving-gpu"
    gpu["gpus"] = 1
    gpu["kubernetes"] = {"replicas": 2}  # GPU replicas are not autoscaled on CPU
    tree["targets"].append(gpu)


def test_cpu_and_gpu_serving_targets_get_their_own_images(tmp_path: Path) -> None:
    files = _ok(_build(tmp_path, _cpu_and_gpu))
    cpu, gpu = _container(files)["image"], _container({DEPLOYMENT: files["serving-gpu/kubernetes/deployment.yaml"]})["image"]
    registry = "registry.example.com/ml/"  # the example's registry
    assert cpu.split(":")[0] == registry + "digits-serving" and gpu.split(":")[0] == registry + "digits-serving-gpu"
    assert _dockerfile_tag(files, "serving") == cpu and _dockerfile_tag(files, "serving-gpu") == gpu


def test_the_tag_changes_with_the_served_content_not_with_the_rest(tmp_path: Path) -> None:
    base = _ok(_build(tmp_path, name="base"))
    tag = _container(base)["image"]
    assert re.fullmatch(r"registry\.example\.com/ml/digits-serving:3-[0-9a-f]{12}", tag)
    # A retrain of the same version (other epochs) is other content: a new tag.
    retrained = _ok(_build(tmp_path, lambda t: t["training"].update(epochs=7), name="retrained"))
    assert _container(retrained)["image"] != tag
    # A change that does not reach the image (the tflite target's gates) keeps the tag.
    unrelated = _ok(_build(tmp_path, lambda t: target_of(t, "android")["gates"].update(max_size_kb=65), name="other"))
    assert _container(unrelated)["image"] == tag
    # The same spec twice: the same tag (the build stays deterministic).
    assert _container(_ok(_build(tmp_path, name="again")))["image"] == tag


def test_an_image_pinned_by_digest_is_used_as_given(tmp_path: Path) -> None:
    pinned = "registry.example.com/ml/serving@sha256:" + "ab" * 32

    def change(tree: dict[str, Any]) -> None:
        target_of(tree, "serving")["kubernetes"]["image"] = pinned
        target_of(tree, "serving")["base_image"] = "tensorflow/serving:2.21.0@sha256:" + "cd" * 32

    files = _ok(_build(tmp_path, change))
    container = _container(files)
    assert container["image"] == pinned and container["imagePullPolicy"] == "IfNotPresent"
    assert "FROM tensorflow/serving:2.21.0@sha256:" + "cd" * 32 in files["serving/Dockerfile"]


def test_two_targets_naming_one_repository_are_rejected(tmp_path: Path) -> None:
    def change(tree: dict[str, Any]) -> None:
        _cpu_and_gpu(tree)
        for name in ("serving", "serving-gpu"):
            target_of(tree, name)["kubernetes"]["image"] = "registry.example.com/ml/digits"

    errors = _errors(_build(tmp_path, change))
    assert errors == [("targets[3].kubernetes.image",
                       "image repository 'registry.example.com/ml/digits' is also the one of targets[1]")]


# 2. The GPU Feature Discovery label is opt-in (the GPU limit schedules on its own).

def test_gpu_pods_do_not_require_the_feature_discovery_label_by_default(tmp_path: Path) -> None:
    files = _ok(_build(tmp_path, lambda t: (target_of(t, "serving").update(gpus=1, kubernetes={"replicas": 2}),
                                            t.pop("environments"))))
    pod = _pod(files)
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nodeSelector" not in pod


# 3. Graceful drain.

def test_pods_drain_before_they_stop(tmp_path: Path) -> None:
    files = _ok(_build(tmp_path, lambda t: target_of(t, "serving")["kubernetes"].update(drain_seconds=20)))
    pod = _pod(files)
    command = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command == ["/bin/sleep", "20"]
    assert pod["terminationGracePeriodSeconds"] > 20


# 4. Thread pools from the CPU limit.

def test_thread_flags_follow_the_cpu_limit(tmp_path: Path) -> None:
    def change(tree: dict[str, Any]) -> None:
        target_of(tree, "serving")["kubernetes"]["resources"] = {"requests": {"cpu": "1", "memory": "1Gi"},
                                                                 "limits": {"cpu": "3500m", "memory": "2Gi"}}

    files = _ok(_build(tmp_path, change))
    assert _container(files)["args"] == ["--tensorflow_intra_op_parallelism=4", "--tensorflow_inter_op_parallelism=4",
                                         "--rest_api_num_threads=16"]
    batching = files["serving/config/batching_parameters.txt"]
    assert "num_batch_threads { value: 4 }" in batching and "max_enqueued_batches { value: 4 }" in batching


# 5. Spread over zones and nodes by default, configurable.

def test_replicas_spread_over_zones_and_nodes(tmp_path: Path) -> None:
    pod = _pod(_ok(_build(tmp_path, name="default")))
    spread = pod["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    assert {c["whenUnsatisfiable"] for c in spread} == {"ScheduleAnyway"}
    assert spread[0]["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "digits-serving"
    off = _pod(_ok(_build(tmp_path, lambda t: target_of(t, "serving")["kubernetes"].update(
        topology_spread={"topology_keys": []}), name="off")))
    assert "topologySpreadConstraints" not in off
    strict = _pod(_ok(_build(tmp_path, lambda t: target_of(t, "serving")["kubernetes"].update(
        topology_spread={"topology_keys": ["kubernetes.io/hostname"], "when_unsatisfiable": "DoNotSchedule"}),
        name="strict")))
    assert [(c["topologyKey"], c["whenUnsatisfiable"]) for c in strict["topologySpreadConstraints"]] == [
        ("kubernetes.io/hostname", "DoNotSchedule")]


# 6. Every named version must be in the served bundle.

def test_a_label_on_a_version_the_image_does_not_hold_is_rejected(tmp_path: Path) -> None:
    def change(tree: dict[str, Any]) -> None:
        serving = target_of(tree, "serving")
        serving["version_labels"] = {"stable": 2}

    errors = _errors(_build(tmp_path, change))
    message = "version 2 is not in the image, which holds only version 3"
    assert errors == [("targets[1].version_labels", "version 3, the one this spec builds, has no label and is not "
                                                    "the 'stable' label's: no Deployment would serve it"),
                      ("targets[1].version_labels.stable", message)]  # one message per version
    errors = _errors(_build(tmp_path, lambda t: target_of(t, "serving").update(
        version_policy={"kind": "specific", "versions": [3, 4]}, version_labels={}), name="policy"))
    assert errors == [("targets[1].version_policy.versions[1]", "version 4 is not in the image, which holds only version 3")]


def test_cli_exits_2_for_a_version_the_image_does_not_hold(tmp_path: Path) -> None:
    import subprocess
    import sys

    tree = copy.deepcopy(example_tree())
    target_of(tree, "serving")["version_labels"] = {"stable": 2, "canary": 3}
    spec = tmp_path / "deploy.yaml"
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "tfspec", "build", str(spec), "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "targets[1].version_labels.stable: version 2 is not in the image" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_a_model_store_serves_stable_and_canary(builds: dict[str, dict[str, str]]) -> None:
    files = builds["gpu-serving"]
    config = files["serving/config/models.config"]
    # The stock image has no S3 file system: the store is copied into the image's model folder.
    assert 'base_path: "/models/digits"' in config
    assert re.search(r"specific \{\s+versions: 2\s+\}", config)  # stable; the canary has its own Deployment
    canary = yaml.safe_load(files["serving/kubernetes/configmap-canary.yaml"])["data"]["models.config"]
    assert re.search(r"specific \{\s+versions: 3\s+\}", canary)
    dockerfile = files["serving/Dockerfile"]
    assert "COPY models/" not in dockerfile  # the image carries only the configuration
    assert '"--allow_version_labels_for_unavailable_models=true"' in dockerfile
    assert "--allow_version_labels_for_unavailable_models" not in builds["example"]["serving/Dockerfile"]
    # The AWS CLI containers read the store; TF Serving reads only the local copy.
    server, container = _pod(files)["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["STORE_ENDPOINT"] == "http://minio.storage:9000" and env["AWS_DEFAULT_REGION"] == "eu-west-1"
    # Credentials by reference only: the Secret mounted as files, the client told where the file is.
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/var/run/secrets/tfspec/store/credentials"
    assert {"name": "store-credentials", "secret": {"secretName": "digits-store"}} in _pod(files)["volumes"]
    assert {"name": "store-credentials", "mountPath": "/var/run/secrets/tfspec/store", "readOnly": True} in \
        container["volumeMounts"]
    assert "envFrom" not in container and "envFrom" not in server
    assert not any(m["name"] == "store-credentials" for m in server["volumeMounts"])


# 7. Pull policy and registry prefix.

def test_images_get_the_registry_prefix_and_if_not_present(tmp_path: Path) -> None:
    files = _ok(_build(tmp_path, lambda t: t.update(registry="registry.example.com/ml")))
    container = _container(files)
    assert container["image"].startswith("registry.example.com/ml/digits-serving:3-")
    assert container["imagePullPolicy"] == "IfNotPresent"
    jobset = yaml.safe_load(files["cluster/kubernetes/jobset.yaml"])
    (worker,) = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"]
    assert worker["image"].startswith("registry.example.com/ml/digits-cluster:3-")
    assert worker["imagePullPolicy"] == "IfNotPresent"
    assert _dockerfile_tag(files, "cluster") == worker["image"]


# 8. Training storage.

def test_read_write_once_with_several_workers_is_rejected(tmp_path: Path) -> None:
    errors = _errors(_build(tmp_path, lambda t: target_of(t, "cluster")["storage"].update(access_mode="ReadWriteOnce")))
    assert errors == [("targets[2].storage.access_mode",
                       "ReadWriteOnce storage cannot be mounted by 4 workers on different nodes")]


def test_a_generated_read_write_many_claim_needs_a_storage_class(tmp_path: Path) -> None:
    errors = _errors(_build(tmp_path, lambda t: target_of(t, "cluster").pop("storage")))
    assert errors == [("targets[2].storage", "a generated ReadWriteMany claim needs a storage_class that offers "
                       "ReadWriteMany")]
    files = _ok(_build(tmp_path, lambda t: target_of(t, "cluster").update(
        workers=1, storage={"access_mode": "ReadWriteOnce"}), name="single"))
    assert yaml.safe_load(files["cluster/kubernetes/persistentvolumeclaim.yaml"])["spec"]["accessModes"] == ["ReadWriteOnce"]


# 9. Disruption budget.

def test_disruption_budget_limits_evictions(tmp_path: Path) -> None:
    def prod(tree: dict[str, Any]) -> None:
        target_of(tree, "serving")["kubernetes"] = {"autoscale": {"min": 20, "max": 40}}

    pdb = yaml.safe_load(_ok(_build(tmp_path, prod))["serving/kubernetes/poddisruptionbudget.yaml"])
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": pdb["spec"]["selector"]}
    percent = yaml.safe_load(_ok(_build(tmp_path, lambda t: target_of(t, "serving")["kubernetes"].update(
        max_unavailable="10%"), name="percent"))["serving/kubernetes/poddisruptionbudget.yaml"])
    assert percent["spec"]["maxUnavailable"] == "10%"
    both = _errors(_build(tmp_path, lambda t: target_of(t, "serving")["kubernetes"].update(
        max_unavailable=1, min_available=1), name="both"))
    assert both == [("targets[1].kubernetes.max_unavailable", "give min_available or max_unavailable, not both")]


# 10. Worker DNS survives a kustomize namePrefix.

def test_indexed_job_worker_hosts_survive_a_name_prefix(build_root: Path, tmp_path: Path) -> None:
    import shutil

    overlay = tmp_path / "overlay"
    overlay.mkdir()
    shutil.copytree(build_root / "indexed-job" / "cluster" / "kubernetes", tmp_path / "base")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namePrefix": "team-a-", "nameSuffix": "-x", "resources": ["../base"]}))
    result = run_tool([tool("kubectl"), "kustomize", str(overlay)])
    assert result.returncode == 0, result.stderr
    documents = {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}
    service, job = documents["Service"], documents["Job"]
    assert service["metadata"]["name"] == "team-a-digits-cluster-workers-x"
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"]
    for index in range(3):
        config = tf_config_from_environment(pod_environment(job, index))
        assert config["cluster"]["worker"][index] == f"{job['metadata']['name']}-{index}.{service['metadata']['name']}:23456"
        assert job["metadata"]["name"].startswith("team-a-digits-cluster-")


# 11. Jobs named by content, deleted after they finish.

def test_jobs_are_named_by_content_and_expire(tmp_path: Path) -> None:
    def indexed(tree: dict[str, Any]) -> None:
        target_of(tree, "cluster").update(operator="indexed_job")

    first = yaml.safe_load(_ok(_build(tmp_path, indexed, name="a"))["cluster/kubernetes/job.yaml"])
    same = yaml.safe_load(_ok(_build(tmp_path, indexed, name="b"))["cluster/kubernetes/job.yaml"])
    changed = yaml.safe_load(_ok(_build(tmp_path, lambda t: (indexed(t), t["training"].update(epochs=9)),
                                        name="c"))["cluster/kubernetes/job.yaml"])
    assert re.fullmatch(r"digits-cluster-[0-9a-f]{8}", first["metadata"]["name"])
    assert first["metadata"]["name"] == same["metadata"]["name"] != changed["metadata"]["name"]
    assert first["spec"]["ttlSecondsAfterFinished"] == 86400
    tfjob = yaml.safe_load(_ok(_build(tmp_path, lambda t: target_of(t, "cluster").update(operator="tfjob"),
                                      name="tfjob"))["cluster/kubernetes/tfjob.yaml"])
    assert re.fullmatch(r"digits-cluster-[0-9a-f]{8}", tfjob["metadata"]["name"])
    assert tfjob["spec"]["runPolicy"]["ttlSecondsAfterFinished"] == 86400
    jobset = yaml.safe_load(_ok(_build(tmp_path, name="jobset"))["cluster/kubernetes/jobset.yaml"])
    assert re.fullmatch(r"digits-cluster-[0-9a-f]{8}", jobset["metadata"]["name"])
    assert jobset["spec"]["ttlSecondsAfterFinished"] == 86400


# 12. The ConfigMap's name hashes the data only.

def test_configmap_name_ignores_the_header(tmp_path: Path) -> None:
    def name(files: dict[str, str]) -> str:
        return yaml.safe_load(files["serving/kubernetes/configmap.yaml"])["metadata"]["name"]

    base = _ok(_build(tmp_path, name="base"))
    epochs = _ok(_build(tmp_path, lambda t: t["training"].update(epochs=7), name="epochs"))
    assert base["serving/config/models.config"] != epochs["serving/config/models.config"]  # the header differs
    assert name(base) == name(epochs)
    batching = _ok(_build(tmp_path, lambda t: target_of(t, "serving")["batching"].update(max_batch_size=64,
                                                                                           allowed_batch_sizes=[64]),
                          name="batching"))
    assert name(batching) != name(base)


# 15. yamllint's default rules on every YAML output (the header's length excepted).

HEADER = re.compile(r"^\s*# (Generated by tfspec |DO NOT EDIT: )")
# The default rules; a value that cannot be broken (a digest-pinned image, the worker host list) may
# make its own ``key: value`` line long, as yamllint already allows for a lone word.
YAMLLINT = "{extends: default, rules: {line-length: {allow-non-breakable-inline-mappings: true}}}"


def test_every_yaml_output_is_yamllint_clean(build_root: Path) -> None:
    paths = sorted(p for p in build_root.rglob("*.yaml"))
    assert len(paths) > 50
    result = run_tool([tool("yamllint"), "-f", "parsable", "-d", YAMLLINT, *map(str, paths)])
    problems = []
    for line in result.stdout.splitlines():
        path, row, _column, message = line.split(":", 3)
        text = Path(path).read_text("utf-8").splitlines()[int(row) - 1]
        if "(line-length)" in message and HEADER.match(text):
            continue
        problems.append(line)
    assert not problems, "\n".join(problems[:40])


def test_yamllint_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("---\nkey:\n- a\n- b\n")
    result = run_tool([tool("yamllint"), "-f", "parsable", "-d", "default", str(bad)])
    assert result.returncode != 0 and "(indentation)" in result.stdout


@pytest.mark.parametrize("build", ["example", "indexed-job"])
def test_the_spec_copy_is_the_resolved_spec(builds: dict[str, dict[str, str]], build: str) -> None:
    copy_text = builds[build]["cluster/spec/digits.yaml"]
    tree = yaml.safe_load(copy_text)
    assert tree["targets"][0]["kind"] == "tflite" and tree["name"] == "digits"


def test_the_plan_uploads_to_the_model_store(builds: dict[str, dict[str, str]], tmp_path: Path) -> None:
    import json

    steps = {s["id"]: s for s in json.loads(builds["gpu-serving"]["plan.json"])["steps"]}
    upload = steps["serving.upload"]
    # the bundle, and every step that gates a release: nothing is pushed from a run that missed a gate
    gate_steps = [i for i, s in steps.items() if s["kind"] == "verify"]
    assert upload["inputs"] == ["serving.bundle", "evaluate", *gate_steps] and upload["kind"] == "upload"
    assert len(gate_steps) >= 2
    assert upload["params"]["base_path"] == "s3://models/digits"
    assert upload["params"]["endpoint_url"] == "http://minio.storage:9000"
    # Labels may name unavailable versions here: only this version must be in the store.
    assert upload["params"]["required_versions"] == [3]
    assert steps["kserve.upload"]["params"]["base_path"] == "gs://models/digits"
    assert "serving.upload" not in {s["id"] for s in json.loads(builds["example"]["plan.json"])["steps"]}

    def strict(tree: dict[str, Any]) -> None:
        serving = target_of(tree, "serving")
        serving["version_labels"] = {"stable": 2, "canary": 3}
        serving["model_store"] = {"base_path": "s3://models/digits"}

    plan = json.loads(_ok(_build(tmp_path, strict))["plan.json"])
    (params,) = [s["params"] for s in plan["steps"] if s["id"] == "serving.upload"]
    assert params["required_versions"] == [2, 3]
    assert "credentials" not in json.dumps(params).lower()


def test_a_single_worker_gets_a_read_write_once_claim_from_the_default_class(tmp_path: Path) -> None:
    files = _ok(_build(tmp_path, lambda t: target_of(t, "cluster").update(workers=1, storage={})))
    pvc = yaml.safe_load(files["cluster/kubernetes/persistentvolumeclaim.yaml"])
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"] and "storageClassName" not in pvc["spec"]


@pytest.mark.parametrize("base_path", ["s3://models/../other", "s3://models/a b", "http://models/x", "s3://m/x\n"])
def test_a_bad_store_path_is_one_diagnostic(tmp_path: Path, base_path: str) -> None:
    errors = _errors(_build(tmp_path, lambda t: target_of(t, "serving").update(model_store={"base_path": base_path})))
    assert [path for path, _ in errors] == ["targets[1].model_store.base_path"]
