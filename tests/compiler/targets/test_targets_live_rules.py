"""What the controllers do with the generated serving objects: TF Serving's routing and polling, Knative's
and KServe's admission and reconcile rules (the oracles in tests/oracles/ cite their upstream source).

Each test builds a spec the way users write it and applies the controller's rule to the generated files:
the schemas (test_targets_kubernetes.py, test_targets_kserve.py) say these objects are well-formed, these
tests say they work.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from oracles import kserve as kserve_rules
from oracles import knative
from oracles import tf_serving as tfs
from tfspec.compiler.pipeline import CompileResult

from targets_testing import compile_tree, example_tree, target_of

ISVC = "kserve/kubernetes/inferenceservice.yaml"


def _build(tmp_path: Path, change: Any, name: str = "spec") -> CompileResult:
    tree = copy.deepcopy(example_tree())
    change(tree)
    return compile_tree(tree, tmp_path / name)


def _ok(result: CompileResult) -> dict[str, str]:
    assert result.ok, "\n".join(str(d) for d in result.diagnostics)
    return result.files


def _errors(result: CompileResult) -> list[tuple[str, str]]:
    assert not result.ok, "accepted"
    return [(d.path, d.message) for d in result.diagnostics]


def _documents(files: dict[str, str], folder: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of a kubernetes/ folder by (kind, name)."""
    out = {}
    for path, text in files.items():
        if path.startswith(folder) and path.endswith(".yaml") and not path.endswith(("kustomization.yaml",
                                                                                      "kustomizeconfig.yaml")):
            for document in yaml.safe_load_all(text):
                if document:
                    out[(document["kind"], document["metadata"]["name"])] = document
    return out


def _servers(files: dict[str, str], target: str = "serving") -> dict[str, tuple[list[tfs.ModelConfig], dict[str, Any]]]:
    """Per Service: the models.config of the pods it selects and the Deployment (what a request meets)."""
    objects = _documents(files, f"{target}/kubernetes/")
    out = {}
    for (kind, name), service in objects.items():
        if kind != "Service":
            continue
        selector = service["spec"]["selector"]
        (deployment,) = [d for (k, _), d in objects.items() if k == "Deployment"
                         and selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        config_map = objects[("ConfigMap", volumes["config"]["configMap"]["name"])]
        out[name] = (tfs.parse_models_config(config_map["data"]["models.config"]), deployment)
    return out


def _loaded(models: list[tfs.ModelConfig], store: list[str]) -> dict[str, list[int]]:
    """What each model of a server loads when its base_path holds the ``store`` folders."""
    return {m.name: tfs.aspired_versions(m, store) for m in models}


# --- TF Serving: canary by labels (a request without a label reaches the default label's version) -------

def _canary(tree: dict[str, Any]) -> None:
    serving = target_of(tree, "serving")
    serving["version_labels"] = {"stable": 2, "canary": 3}
    serving["model_store"] = {"base_path": "gs://models/digits"}


def test_unlabelled_requests_reach_stable_and_the_canary_label_reaches_the_canary(tmp_path: Path) -> None:
    files = _ok(_build(tmp_path, _canary))
    servers = _servers(files)
    assert set(servers) == {"digits-serving", "digits-serving-canary"}
    store = ["1", "2", "3", ".tfspec-upload-4-abc"]  # what the bucket holds (an upload in progress too)
    models, _ = servers["digits-serving"]
    loaded = _loaded(models, store)
    assert tfs.version_for_request(models, loaded, "digits") == 2  # TF Serving's rule: the highest loaded
    assert tfs.version_for_request(models, loaded, "digits", label="stable") == 2
    canary_models, canary = servers["digits-serving-canary"]
    canary_loaded = _loaded(canary_models, store)
    assert tfs.version_for_request(canary_models, canary_loaded, "digits", label="canary") == 3
    assert tfs.version_for_request(canary_models, canary_loaded, "digits") == 3
    assert canary["spec"]["replicas"] == 1  # kubernetes.canary_replicas
    # Promotion in Git: both labels on 3, one server again, unlabelled traffic on 3.
    promoted = _ok(_build(tmp_path, lambda t: (_canary(t), target_of(t, "serving")["version_labels"].update(stable=3)),
                          name="promoted"))
    (models, _), = _servers(promoted).values()
    assert tfs.version_for_request(models, _loaded(models, store), "digits") == 3
    assert models[0].labels == {"canary": 3, "stable": 3}


def test_the_routing_oracle_sees_the_old_single_server_send_unlabelled_traffic_to_the_canary() -> None:
    """The oracle can fail: one server loading stable 2 and canary 3 answers an unlabelled request with 3."""
    both = tfs.ModelConfig("digits", "/models/digits", "specific", 1, (2, 3), {"stable": 2, "canary": 3})
    assert tfs.version_for_request([both], _loaded([both], ["2", "3"]), "digits") == 3
    with pytest.raises(LookupError):
        tfs.version_for_request([both], {"digits": [2]}, "digits", label="canary")


def test_labels_with_an_explicit_policy_are_refused(tmp_path: Path) -> None:
    def change(tree: dict[str, Any]) -> None:
        _canary(tree)
        target_of(tree, "serving")["version_policy"] = {"kind": "latest", "num_versions": 2}
    assert ("targets[1].version_policy",
            "version_labels choose the versions served (one Deployment per labelled version, the default_label's "
            "answering requests without a label)") in _errors(_build(tmp_path, change))


# --- TF Serving: an s3:// store with the stock image ------------------------------------------------------

def _s3(tree: dict[str, Any]) -> None:
    target_of(tree, "serving")["model_store"] = {"base_path": "s3://models/digits", "credentials": {"kubernetes_secret": "digits-store"},
                                                 "endpoint_url": "http://minio.storage:9000", "poll_seconds": 45}


def test_an_s3_store_is_copied_next_to_the_server_by_the_pinned_aws_cli(tmp_path: Path) -> None:
    files = _ok(_build(tmp_path, _s3))
    (models, deployment), = _servers(files).values()
    assert models[0].base_path == "/models/digits"  # a local folder: the stock image has no s3:// file system
    assert "s3://" not in files["serving/config/models.config"]
    pod = deployment["spec"]["template"]["spec"]
    (initial,) = pod["initContainers"]
    server, keeper = pod["containers"]
    for container in (initial, keeper):
        assert container["image"] == "amazon/aws-cli:2.36.7"
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["STORE_BUCKET"] == "models" and env["STORE_PREFIX"] == "digits/"
        assert env["SYNC_DEST"] == "/models/digits" and env["STORE_ENDPOINT"] == "http://minio.storage:9000"
        assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/var/run/secrets/tfspec/store/credentials"
        assert env["SYNC_POLL_SECONDS"] == "45"
        assert {"name": "models", "mountPath": "/models"} in container["volumeMounts"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {e["name"]: e["value"] for e in initial["env"]}["SYNC_ONCE"] == "1"
    assert {e["name"]: e["value"] for e in keeper["env"]}["SYNC_ONCE"] == "0"
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in server["volumeMounts"]
    assert not any(e["name"].startswith(("S3_", "AWS_")) for e in server["env"])  # TF Serving never reads S3
    # The image's entrypoint no longer polls the bucket itself.
    assert "--file_system_poll_wait_seconds" not in files["serving/Dockerfile"]


def test_a_gs_store_is_read_by_tf_serving_every_poll_seconds(tmp_path: Path) -> None:
    files = _ok(_build(tmp_path, lambda t: target_of(t, "serving").update(
        model_store={"base_path": "gs://models/digits", "credentials": {"kubernetes_secret": "digits-gcs"}})))
    assert '"--file_system_poll_wait_seconds=30"' in files["serving/Dockerfile"]
    (models, deployment), = _servers(files).values()
    assert models[0].base_path == "gs://models/digits"
    assert "initContainers" not in deployment["spec"]["template"]["spec"]


# --- TF Serving: probes, GPUs, identity --------------------------------------------------------------------

def test_liveness_uses_the_grpc_health_service_not_the_rest_pool(tmp_path: Path) -> None:
    files = _ok(_build(tmp_path, lambda t: None))
    (_, deployment), = _servers(files).values()
    server = deployment["spec"]["template"]["spec"]["containers"][0]
    assert server["livenessProbe"]["grpc"] == {"port": 8500}
    assert '"--enable_grpc_healthcheck_service=true"' in files["serving/Dockerfile"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/v1/models/digits"
    assert {"name": "HOME", "value": "/tmp"} in server["env"]  # a writable home on the read-only root


def test_an_old_serving_version_without_grpc_health_is_refused(tmp_path: Path) -> None:
    errors = _errors(_build(tmp_path, lambda t: target_of(t, "serving").update(serving_version="2.14.1")))
    assert [path for path, _ in errors] == ["targets[1].serving_version"]


def _gpu(tree: dict[str, Any]) -> None:
    serving = target_of(tree, "serving")
    serving["gpus"] = 1
    serving["kubernetes"] = {"replicas": 2}
    tree["environments"] = {}


def test_gpu_replicas_roll_without_a_spare_gpu_and_are_not_autoscaled_on_cpu(tmp_path: Path) -> None:
    files = _ok(_build(tmp_path, _gpu))
    (_, deployment), = _servers(files).values()
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    cpu = _ok(_build(tmp_path, lambda t: None, name="cpu"))
    (_, cpu_deployment), = _servers(cpu).values()
    assert cpu_deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}

    def autoscaled(tree: dict[str, Any]) -> None:
        _gpu(tree)
        target_of(tree, "serving")["kubernetes"]["autoscale"] = {"min": 2, "max": 4}
    assert [p for p, _ in _errors(_build(tmp_path, autoscaled, name="hpa"))] == ["targets[1].kubernetes.autoscale"]

    def stuck(tree: dict[str, Any]) -> None:
        _gpu(tree)
        target_of(tree, "serving")["kubernetes"]["rolling_update"] = {"max_unavailable": 0}
    assert [p for p, _ in _errors(_build(tmp_path, stuck, name="stuck"))] == ["targets[1].kubernetes.rolling_update"]


def test_service_account_and_pull_secrets_reach_the_pods(tmp_path: Path) -> None:
    def change(tree: dict[str, Any]) -> None:
        target_of(tree, "serving")["kubernetes"].update(service_account="digits-irsa",
                                                       image_pull_secrets=["registry-pull"])
        tree["registry"] = "registry.example.com/ml"
    result = _build(tmp_path, change)
    (_, deployment), = _servers(_ok(result)).values()
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "digits-irsa" and pod["automountServiceAccountToken"] is False
    assert pod["imagePullSecrets"] == [{"name": "registry-pull"}]
    assert not [w for w in result.warnings if "registry" in w.message]


def test_an_image_without_a_registry_is_a_build_warning(tmp_path: Path) -> None:
    result = _build(tmp_path, lambda t: t.pop("registry"))
    assert result.ok
    assert [(w.path, w.message) for w in result.warnings if "registry" in w.message] == [
        ("targets[1].kubernetes", "warning: the image 'digits-serving' names no registry: a cluster pulls "
                                  "docker.io/library/digits-serving, not the image built here")]


# --- KServe ---------------------------------------------------------------------------------------------

def _kserve(tree: dict[str, Any], **fields: Any) -> None:
    target = {"kind": "kserve", "name": "kserve", "model_store": {"base_path": "s3://models/digits"}}
    target.update(fields)
    tree["targets"].append(target)


def _isvc(files: dict[str, str]) -> dict[str, Any]:
    return yaml.safe_load(files[ISVC])


def test_knative_mode_is_stated_and_scales_on_a_metric_the_kpa_accepts(tmp_path: Path) -> None:
    isvc = _isvc(_ok(_build(tmp_path, lambda t: _kserve(t, canary_traffic_percent=10))))
    assert isvc["metadata"]["annotations"][kserve_rules.MODE] == "Knative"
    assert kserve_rules.deployment_mode(isvc) == "Knative"
    assert kserve_rules.autoscaling_error(isvc) is None
    assert knative.validate_metric(kserve_rules.knative_annotations(isvc)) is None
    assert kserve_rules.canary_applies(isvc)
    # The mode's canonical name: an update keeps being accepted once the status recorded it.
    assert kserve_rules.update_allowed(isvc, status_mode="Knative")


def test_the_kserve_and_knative_oracles_reject_cpu_in_knative_mode(tmp_path: Path) -> None:
    """What the old output did: scaleMetric cpu with no mode stated (KServe's default Serverless = Knative)."""
    old = {"metadata": {"name": "digits-kserve"},
           "spec": {"predictor": {"minReplicas": 1, "maxReplicas": 5, "scaleMetric": "cpu", "scaleTarget": 70,
                                  "model": {"runtimeVersion": "2.21.0"}}}}
    assert kserve_rules.deployment_mode(old) == "Knative"
    assert kserve_rules.autoscaling_error(old) == "[cpu] is not a supported metric"
    assert knative.validate_metric(kserve_rules.knative_annotations(old)) is not None
    legacy = {"metadata": {"annotations": {kserve_rules.MODE: "RawDeployment"}}}
    assert not kserve_rules.update_allowed(legacy, status_mode="Standard")


def test_standard_mode_scales_on_cpu(tmp_path: Path) -> None:
    isvc = _isvc(_ok(_build(tmp_path, lambda t: _kserve(t, deployment_mode="Standard",
                                                         autoscale={"metric": "cpu", "target": 70}))))
    assert isvc["metadata"]["annotations"][kserve_rules.MODE] == "Standard"
    assert (isvc["spec"]["predictor"]["scaleMetric"], isvc["spec"]["predictor"]["scaleTarget"]) == ("cpu", 70)
    assert kserve_rules.autoscaling_error(isvc) is None
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]


@pytest.mark.parametrize(("fields", "path", "message"), [
    ({"autoscale": {"metric": "cpu"}}, "targets[3].autoscale.metric",
     "deployment_mode Knative does not scale on cpu (it takes concurrency or rps)"),
    ({"deployment_mode": "Standard", "autoscale": {"metric": "rps"}}, "targets[3].autoscale.metric",
     "deployment_mode Standard does not scale on rps (it takes cpu or memory)"),
    ({"deployment_mode": "Standard", "canary_traffic_percent": 10}, "targets[3].canary_traffic_percent",
     "deployment_mode Standard has no revisions to split traffic between: canaryTrafficPercent would be ignored"),
    ({"runtime_version": "2.21.0-gpu"}, "targets[3].runtime_version", "a -gpu runtime without gpus: KServe rejects it"),
    ({"model_store": {"base_path": "s3://models/digits", "endpoint_url": "http://minio:9000"}},
     "targets[3].model_store.endpoint_url",
     "KServe reads endpoint_url from the store's credentials Secret, and none is named"),
])
def test_combinations_kserve_would_reject_or_ignore_are_refused_at_the_line(tmp_path: Path, fields: dict[str, Any],
                                                                         path: str, message: str) -> None:
    assert (path, message) in _errors(_build(tmp_path, lambda t: _kserve(t, **fields)))


def test_cli_refuses_cpu_in_knative_mode_with_file_line_col(tmp_path: Path) -> None:
    tree = copy.deepcopy(example_tree())
    _kserve(tree, autoscale={"min": 1, "max": 3, "metric": "cpu"})
    spec = tmp_path / "deploy.yaml"
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "tfspec", "build", str(spec), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert f"{spec}:" in result.stderr and "targets[3].autoscale.metric: deployment_mode Knative does not scale on " \
        "cpu" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_each_revision_downloads_exactly_its_own_version(tmp_path: Path) -> None:
    isvc = _isvc(_ok(_build(tmp_path, lambda t: _kserve(t, canary_traffic_percent=10))))
    uri = isvc["spec"]["predictor"]["model"]["storageUri"]
    assert uri == "s3://models/digits/3/"
    # The bucket as tfspec run's pinned layout leaves it after versions 3 and 30 (and an upload in flight).
    bucket = {f"digits/{v}/{v}/{f}": 10 for v in (3, 30) for f in ("saved_model.pb", "variables/variables.index")}
    bucket["digits/.tfspec-upload-31-abc/saved_model.pb"] = 10
    downloaded = kserve_rules.download_s3(uri, bucket)
    assert sorted(downloaded) == ["3/saved_model.pb", "3/variables/variables.index"]
    # TF Serving in the runtime (--model_base_path=/mnt/models) then loads version 3 and only 3.
    model = tfs.ModelConfig(kserve_rules.served_model_name(isvc), kserve_rules.MODEL_DIR, "latest", 1, (), {})
    children = sorted({p.split("/")[0] for p in downloaded})
    assert tfs.aspired_versions(model, children) == [3]
    assert kserve_rules.served_model_name(isvc) == "digits-kserve"
    # The oracle can fail: the old storageUri (the whole store) gives every revision the newest version.
    flat = {f"digits/{v}/{f}": 10 for v in (3, 30) for f in ("saved_model.pb", "variables/variables.index")}
    old = kserve_rules.download_s3("s3://models/digits", flat)
    assert tfs.aspired_versions(model, sorted({p.split("/")[0] for p in old})) == [30]
    # And a URI without the trailing slash would take version 30's files too.
    assert "0/3/saved_model.pb" not in kserve_rules.download_s3("s3://models/digits/3/", bucket)
    assert any(p.startswith("0/") for p in kserve_rules.download_s3("s3://models/digits/3", bucket))


def test_gpus_select_the_gpu_runtime_and_tolerate_the_gpu_taint(tmp_path: Path) -> None:
    isvc = _isvc(_ok(_build(tmp_path, lambda t: _kserve(t, gpus=1, node_selector={"gpu.example.com/model": "l4"},
                                                         tolerations=[{"key": "dedicated", "operator": "Equal",
                                                                       "value": "ml"}]))))
    predictor = isvc["spec"]["predictor"]
    assert predictor["model"]["runtimeVersion"] == "2.21.0-gpu"
    assert kserve_rules.runtime_image(isvc) == "tensorflow/serving:2.21.0-gpu"
    assert kserve_rules.gpu_runtime_error(isvc) is None
    assert predictor["nodeSelector"] == {"gpu.example.com/model": "l4"}
    assert predictor["tolerations"][0] == {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    # The oracle can fail: the old CPU tag with a GPU limit.
    predictor["model"]["runtimeVersion"] = "2.21.0"
    assert kserve_rules.gpu_runtime_error(isvc) is not None
    assert kserve_rules.runtime_image(isvc) == "tensorflow/serving:2.21.0"


def test_store_credentials_reach_the_storage_initializer(tmp_path: Path) -> None:
    result = _build(tmp_path, lambda t: _kserve(t, model_store={
        "base_path": "s3://models/digits", "endpoint_url": "http://minio.storage:9000", "region": "eu-west-1",
        "credentials": {"kubernetes_secret": "digits-store"}}))
    files = _ok(result)
    isvc = _isvc(files)
    account = yaml.safe_load(files["kserve/kubernetes/serviceaccount.yaml"])
    assert isvc["spec"]["predictor"]["serviceAccountName"] == account["metadata"]["name"] == "digits-kserve"
    assert account["secrets"] == [{"name": "digits-store"}]
    # The Secret as the docs and the ServiceAccount's comment say to make it (kubectl create + annotate).
    command = [line.strip(" #\\") for line in files["kserve/kubernetes/serviceaccount.yaml"].splitlines()
               if line.startswith("#     serving.kserve.io/")]
    annotations = dict(line.split("=", 1) for line in command)
    secret = {"metadata": {"name": "digits-store", "annotations": annotations},
              "data": {"awsAccessKeyID": "…", "awsSecretAccessKey": "…"}}
    env = kserve_rules.storage_initializer_env(account, {"digits-store": secret})
    assert env == {"AWS_ACCESS_KEY_ID": "secret:digits-store/awsAccessKeyID",
                   "AWS_SECRET_ACCESS_KEY": "secret:digits-store/awsSecretAccessKey",
                   "S3_USE_HTTPS": "0", "S3_ENDPOINT": "minio.storage:9000",
                   "AWS_ENDPOINT_URL": "http://minio.storage:9000", "AWS_DEFAULT_REGION": "eu-west-1"}
    # Without the annotations KServe goes to AWS: the build says so.
    assert [w.path for w in result.warnings if "kubectl annotate secret digits-store" in w.message] == [
        "targets[3].model_store.credentials.kubernetes_secret"]
    bare = {"metadata": {"name": "digits-store"}, "data": secret["data"]}
    assert "S3_ENDPOINT" not in kserve_rules.storage_initializer_env(account, {"digits-store": bare})


def test_a_name_prefix_renames_the_service_account_and_its_reference(tmp_path: Path) -> None:
    from targets_testing import run_tool, tool

    files = _ok(_build(tmp_path, lambda t: _kserve(t, model_store={"base_path": "gs://models/digits",
                                                                   "credentials": {"kubernetes_secret": "digits-gcs"}})))
    base = tmp_path / "base"
    for path, text in files.items():
        if path.startswith("kserve/kubernetes/"):
            (base / Path(path).name).parent.mkdir(parents=True, exist_ok=True)
            (base / Path(path).name).write_text(text, encoding="utf-8")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources: [../base]\nnamePrefix: team-\nnameSuffix: -prod\n")
    built = run_tool([tool("kubectl"), "kustomize", str(overlay)])
    assert built.returncode == 0, built.stderr
    objects = {d["kind"]: d for d in yaml.safe_load_all(built.stdout) if d}
    account = objects["ServiceAccount"]["metadata"]["name"]
    assert account == "team-digits-kserve-prod"
    assert objects["InferenceService"]["spec"]["predictor"]["serviceAccountName"] == account
    assert objects["ServiceAccount"]["secrets"] == [{"name": "digits-gcs"}]  # not in the base: not renamed
