"""Kubernetes manifests: kubernetes-validate (strict), kubectl kustomize, checkov, and the TFJob CRD schema
(the JobSet's CRD schema: test_targets_jobset.py)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tfspec.base.tf_config import ENV_COMPLETION_INDEX, ENV_WORKER_HOSTS, tf_config_from_environment

from targets_testing import REPO, pod_environment, run_tool, tool
from tfspec_testing import cluster_problems, jobset_child_job, rendered_objects

KUBERNETES_VERSION = "1.37.0"
CRD = REPO / "tests" / "data" / "kubeflow" / "kubeflow.org_tfjobs.yaml"
# Not core Kubernetes kinds: kubernetes-validate knows no CRD (each custom resource has its own CRD test).
NOT_CORE = {"kustomization.yaml", "kustomizeconfig.yaml", "tfjob.yaml", "jobset.yaml", "inferenceservice.yaml"}


def _core_manifests(build_root: Path) -> list[Path]:
    return sorted(p for p in build_root.glob("*/*/kubernetes/*.yaml") if p.name not in NOT_CORE)


def _kubernetes_validate(paths: list[Path]) -> None:
    result = run_tool([tool("kubernetes-validate"), "--strict", "--no-warn", "-k", KUBERNETES_VERSION, *map(str, paths)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_manifest_passes_kubernetes_validate(build_root: Path) -> None:
    paths = _core_manifests(build_root)
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in paths}
    assert kinds == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
                     "PersistentVolumeClaim", "Job", "ServiceAccount"}
    _kubernetes_validate(paths)


def test_every_name_and_label_is_one_the_cluster_accepts(builds: dict[str, dict[str, str]]) -> None:
    """Names and label values of every object of every build, and the names the controllers derive from
    them, against the API server's and the controllers' rules (tests/oracles; no schema checks these)."""
    found = {build: problems for build, files in builds.items()
             if (problems := [p for d in rendered_objects(files) for p in cluster_problems(d)])}
    assert not found, found
    kinds = {d["kind"] for files in builds.values() for d in rendered_objects(files)}
    assert {"JobSet", "TFJob", "Job", "Service", "Deployment", "ConfigMap", "InferenceService"} <= kinds


def test_kubernetes_validate_can_fail(tmp_path: Path, build_root: Path) -> None:
    deployment = yaml.safe_load((build_root / "example/serving/kubernetes/deployment.yaml").read_text())
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/"
    bad = tmp_path / "deployment.yaml"
    bad.write_text(yaml.safe_dump(deployment))
    result = run_tool([tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(bad)])
    assert result.returncode != 0


def test_kubectl_kustomize_builds_every_kustomization(build_root: Path, builds: dict[str, dict[str, str]]) -> None:
    kustomizations = sorted(build_root.glob("*/*/kubernetes/kustomization.yaml"))
    expected = sum(1 for files in builds.values() for path in files if path.endswith("/kubernetes/kustomization.yaml"))
    assert len(kustomizations) == expected >= 2 * len(builds)
    for kustomization in kustomizations:
        folder = kustomization.parent
        result = run_tool([tool("kubectl"), "kustomize", str(folder)])
        assert result.returncode == 0, f"{folder}: {result.stderr}"
        rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
        listed = yaml.safe_load(kustomization.read_text())["resources"]
        assert len(rendered) == len(listed), folder
        namespace = yaml.safe_load(kustomization.read_text()).get("namespace")
        if namespace:
            assert {d["metadata"].get("namespace") for d in rendered} == {namespace}


def test_checkov_passes_with_the_documented_skips(build_root: Path, tmp_path: Path) -> None:
    # The TFJob's worker pod, presented as a Job so checkov's pod checks see it (checkov skips CRDs).
    tfjob_pods = tmp_path / "tfjob-pods"
    tfjob_pods.mkdir()
    for path in sorted(build_root.glob("*/*/kubernetes/tfjob.yaml")):
        tfjob = yaml.safe_load(path.read_text())
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": copy.deepcopy(tfjob["metadata"]),
               "spec": {"template": copy.deepcopy(tfjob["spec"]["tfReplicaSpecs"]["Worker"]["template"])}}
        job["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
        (tfjob_pods / f"{path.parts[-4]}.yaml").write_text(yaml.safe_dump(job))
    # The JobSet's workers, as the Job the JobSet controller creates.
    for path in sorted(build_root.glob("*/*/kubernetes/jobset.yaml")):
        job = jobset_child_job(yaml.safe_load(path.read_text()))
        (tfjob_pods / f"{path.parts[-4]}-jobset.yaml").write_text(yaml.safe_dump(job))
    assert len(list(tfjob_pods.iterdir())) >= 4
    config = REPO / ".checkov.yaml"
    result = run_tool([tool("checkov"), "--config-file", str(config), "-d", str(build_root), "-d", str(tfjob_pods),
                       "-o", "json"])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    reports: list[dict[str, Any]] = []
    decoder, text, position = json.JSONDecoder(), result.stdout, 0
    while text[position:].strip():  # one JSON report per scanned folder
        document, position = decoder.raw_decode(text, len(text) - len(text[position:].lstrip()))
        reports.extend(document if isinstance(document, list) else [document])
    passed = sum(r["summary"]["passed"] for r in reports)
    failed = sum(r["summary"]["failed"] for r in reports)
    assert failed == 0 and passed > 100


def test_checkov_can_fail(tmp_path: Path, build_root: Path) -> None:
    deployment = yaml.safe_load((build_root / "example/serving/kubernetes/deployment.yaml").read_text())
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(deployment))
    result = run_tool([tool("checkov"), "--config-file", str(REPO / ".checkov.yaml"), "-d", str(tmp_path)])
    assert result.returncode != 0 and "CKV_K8S_20" in result.stdout


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
def tfjob_schema() -> dict[str, Any]:
    crd = next(d for d in yaml.safe_load_all(CRD.read_text()) if d)
    assert crd["spec"]["names"]["kind"] == "TFJob"
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return _strict(version["schema"]["openAPIV3Schema"])


def _tfjobs(build_root: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, yaml.safe_load(p.read_text())) for p in sorted(build_root.glob("*/*/kubernetes/tfjob.yaml"))]


def test_tfjob_matches_the_crd_schema(build_root: Path, tfjob_schema: dict[str, Any], tmp_path: Path) -> None:
    tfjobs = _tfjobs(build_root)
    assert tfjobs
    validator = jsonschema.Draft7Validator(tfjob_schema)
    templates = []
    for path, tfjob in tfjobs:
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(tfjob)]
        assert not errors, f"{path}: {errors}"
        assert tfjob["apiVersion"] == "kubeflow.org/v1"
        spec = tfjob["spec"]
        assert set(spec["tfReplicaSpecs"]) == {"Worker"}
        assert "enableDynamicWorker" not in spec
        worker = spec["tfReplicaSpecs"]["Worker"]
        (container,) = worker["template"]["spec"]["containers"]
        assert container["name"] == "tensorflow"
        assert {"name": "tfjob-port", "containerPort": 2222, "protocol": "TCP"} in container["ports"]
        assert not any(e["name"] == "TF_CONFIG" for e in container.get("env", []))  # the operator injects it
        templates.append({"apiVersion": "v1", "kind": "PodTemplate",
                          "metadata": {"name": f"{path.parts[-4]}-worker"}, "template": worker["template"]})
    # The elided part of the CRD (the pod template's spec) is checked against Kubernetes' own schema.
    pod_templates = []
    for index, template in enumerate(templates):
        pod_templates.append(tmp_path / f"podtemplate-{index}.yaml")
        pod_templates[-1].write_text(yaml.safe_dump(template))
    _kubernetes_validate(pod_templates)


def test_tfjob_schema_rejects_unknown_and_mistyped_fields(build_root: Path, tfjob_schema: dict[str, Any]) -> None:
    _, tfjob = _tfjobs(build_root)[0]
    validator = jsonschema.Draft7Validator(tfjob_schema)
    unknown = copy.deepcopy(tfjob)
    unknown["spec"]["tfReplicaSpecs"]["Worker"]["replica"] = 2
    assert list(validator.iter_errors(unknown))
    mistyped = copy.deepcopy(tfjob)
    mistyped["spec"]["runPolicy"]["backoffLimit"] = "three"
    assert list(validator.iter_errors(mistyped))
    missing = copy.deepcopy(tfjob)
    del missing["spec"]["tfReplicaSpecs"]
    assert list(validator.iter_errors(missing))


def test_tfjob_of_the_example(builds: dict[str, dict[str, str]]) -> None:
    tfjob = yaml.safe_load(builds["tfjob"]["cluster/kubernetes/tfjob.yaml"])
    worker = tfjob["spec"]["tfReplicaSpecs"]["Worker"]
    assert worker["replicas"] == 4
    assert tfjob["spec"]["runPolicy"]["backoffLimit"] == 3
    pod = worker["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2
    # Only GPU Feature Discovery sets nvidia.com/gpu.present: the GPU limit schedules without it.
    assert "nodeSelector" not in pod
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "digits-cluster-data"}} in pod["volumes"]
    pvc = yaml.safe_load(builds["tfjob"]["cluster/kubernetes/persistentvolumeclaim.yaml"])
    assert pvc["metadata"]["name"] == "digits-cluster-data"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_indexed_job_and_its_tf_config_contract(builds: dict[str, dict[str, str]]) -> None:
    files = builds["indexed-job"]
    job = yaml.safe_load(files["cluster/kubernetes/job.yaml"])
    service = yaml.safe_load(files["cluster/kubernetes/service.yaml"])
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 3
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"].items() <= job["spec"]["template"]["metadata"]["labels"].items()
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["ports"][0]["containerPort"] == 23456 == service["spec"]["ports"][0]["port"]
    # What a worker does with this environment (Kubernetes adds JOB_COMPLETION_INDEX): pod i must find
    # itself at index i under the hostname Kubernetes gives it, <job name>-<i>.<subdomain>.
    for index in range(3):
        env = pod_environment(job, index)
        config = tf_config_from_environment(env)
        assert config["task"] == {"type": "worker", "index": index}
        hostname = f"{job['metadata']['name']}-{index}"
        assert config["cluster"]["worker"][index] == f"{hostname}.{pod['subdomain']}:23456"
    pvc = yaml.safe_load(files["cluster/kubernetes/persistentvolumeclaim.yaml"])
    assert pvc["spec"]["storageClassName"] == "fast-rwx"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert yaml.safe_load(files["cluster/kubernetes/kustomization.yaml"])["namespace"] == "ml-training"


def test_indexed_job_with_an_existing_claim_and_no_gpus(builds: dict[str, dict[str, str]]) -> None:
    files = builds["indexed-job-cpu"]
    assert "cluster/kubernetes/persistentvolumeclaim.yaml" not in files
    pod = yaml.safe_load(files["cluster/kubernetes/job.yaml"])["spec"]["template"]["spec"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "shared-training-data"}} in pod["volumes"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert not any(v["name"] == "dshm" for v in pod["volumes"])


def test_serving_deployment_of_the_example(builds: dict[str, dict[str, str]]) -> None:
    files = builds["example"]
    deployment = yaml.safe_load(files["serving/kubernetes/deployment.yaml"])
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8501"
    (container,) = pod["spec"]["containers"]
    for probe in ("readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/v1/models/digits", "port": "http"}
    assert container["livenessProbe"]["grpc"] == {"port": 8500}  # away from the REST pool
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"grpc": 8500, "http": 8501}
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert "nvidia.com/gpu" not in container["resources"]["limits"] and "nodeSelector" not in pod["spec"]
    configmap = yaml.safe_load(files["serving/kubernetes/configmap.yaml"])
    assert {"name": "config", "configMap": {"name": configmap["metadata"]["name"]}} in pod["spec"]["volumes"]
    service = yaml.safe_load(files["serving/kubernetes/service.yaml"])
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"grpc": 8500, "http": 8501}
    hpa = yaml.safe_load(files["serving/kubernetes/horizontalpodautoscaler.yaml"])
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    pdb = yaml.safe_load(files["serving/kubernetes/poddisruptionbudget.yaml"])
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    prod = yaml.safe_load(builds["example-prod"]["serving/kubernetes/horizontalpodautoscaler.yaml"])
    assert (prod["spec"]["minReplicas"], prod["spec"]["maxReplicas"]) == (4, 20)


def test_gpu_serving_variant(builds: dict[str, dict[str, str]]) -> None:
    files = builds["gpu-serving"]
    deployment = yaml.safe_load(files["serving/kubernetes/deployment.yaml"])
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    container, sync = pod["containers"]  # an s3:// store: the AWS CLI copies it beside the server
    assert sync["name"] == "store-sync"
    assert re.fullmatch(r"registry\.example\.com/ml/digits-serving:3-[0-9a-f]{12}", container["image"])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    # The spec opted in to GPU Feature Discovery's label.
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true", "cloud.example.com/accelerator": "l4"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
    ]
    assert yaml.safe_load(files["serving/kubernetes/service.yaml"])["spec"]["type"] == "LoadBalancer"
    assert "serving/kubernetes/horizontalpodautoscaler.yaml" not in files
    assert yaml.safe_load(files["serving/kubernetes/kustomization.yaml"])["namespace"] == "ml-serving"


def test_single_replica_gets_no_disruption_budget(builds: dict[str, dict[str, str]]) -> None:
    files = builds["plain-serving"]
    assert "serving/kubernetes/poddisruptionbudget.yaml" not in files
    assert "poddisruptionbudget.yaml" not in files["serving/kubernetes/kustomization.yaml"]
    pod = yaml.safe_load(files["serving/kubernetes/deployment.yaml"])["spec"]["template"]
    assert "annotations" not in pod["metadata"]  # monitoring off: no scrape annotations
