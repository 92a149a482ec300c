"""KServe's controller and webhook rules that decide whether an InferenceService serves what it says.

Source: kserve/kserve at commit aaac4e294dae2c7b1aa1886447793f3aa1c30912 (v0.20.0-rc0-104; the commit of the
vendored CRD in tests/data/kserve/), checked against the v0.16.0 tag where noted:

* deployment mode — ``pkg/constants/constants.go`` (``Knative``/``Standard``; the legacy ``Serverless`` /
  ``RawDeployment`` are normalised, ``ParseDeploymentMode``), ``pkg/controller/v1beta1/inferenceservice/utils/
  utils.go`` ``GetDeploymentMode`` (status, then the annotation, then the config's ``defaultDeploymentMode``,
  ``Serverless`` in ``config/configmap/inferenceservice.yaml``), ``pkg/apis/serving/v1beta1/
  inference_service_validation.go`` ``validateDeploymentMode`` (an update whose annotation differs from the
  *normalised* status mode is rejected: since v0.16.0 a legacy name is refused on every update);
* autoscaling — the same file's ``validateAutoScalingCompExtension`` (Standard + HPA class: ``cpu`` or
  ``memory``; Knative: the KPA's ``concurrency`` or ``rps``, unless the Knative class annotation is HPA), and
  ``pkg/controller/v1alpha1/utils/utils.go`` ``SetAutoScalingAnnotations`` (Knative mode: ``scaleMetric`` →
  ``autoscaling.knative.dev/metric``, class KPA unless set);
* canary — only ``pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go`` reads
  ``canaryTrafficPercent``;
* runtime image — ``config/runtimes/kserve-tensorflow-serving.yaml`` (``tensorflow/serving`` via the
  kustomize ``images`` entry; args ``--model_name={{.Name}}``, ``--model_base_path=/mnt/models``, REST 8080,
  gRPC 9000), ``utils.go`` ``UpdateImageTag`` (``runtimeVersion`` replaces the tag; ``-gpu`` is appended only
  without a runtimeVersion), ``pkg/apis/serving/v1beta1/predictor_tfserving.go`` ``validateGPU``;
* storage — ``python/storage/kserve_storage/kserve_storage.py`` ``_download_s3`` (objects listed by the
  URI's key prefix, each written to ``/mnt/models/<key minus the prefix, leading / stripped>``);
  ``pkg/credentials/service_account_credentials.go`` (the ServiceAccount's IRSA annotation, then each Secret
  it lists: ``awsSecretAccessKey`` → S3 env from ``pkg/credentials/s3/s3_secret.go`` ``BuildSecretEnvs`` with
  ``BuildS3EnvVars(secret.Annotations, secret.Data)``; ``gcloud-application-credentials.json`` → GCS).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MODE", "deployment_mode", "update_allowed", "autoscaling_error", "knative_annotations",
           "canary_applies", "runtime_image", "gpu_runtime_error", "served_model_name", "download_s3",
           "storage_initializer_env", "DEFAULT_RUNTIME_IMAGE", "MODEL_DIR"]

MODE = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
KNATIVE_CLASS = "autoscaling.knative.dev/class"
KNATIVE_HPA = "hpa.autoscaling.knative.dev"
DEFAULT_RUNTIME_IMAGE = "tensorflow/serving:2.6.2"
MODEL_DIR = "/mnt/models"
IRSA = "eks.amazonaws.com/role-arn"
_LEGACY = {"Serverless": "Knative", "RawDeployment": "Standard"}


def _annotations(isvc: dict[str, Any]) -> dict[str, str]:
    return isvc["metadata"].get("annotations") or {}


def deployment_mode(isvc: dict[str, Any], status_mode: str = "", default: str = "Serverless") -> str:
    """``GetDeploymentMode`` (the default comes from the ConfigMap, normalised by ``NewDeployConfig``)."""
    if status_mode:
        return _LEGACY.get(status_mode, status_mode)
    mode = _LEGACY.get(_annotations(isvc).get(MODE, ""), _annotations(isvc).get(MODE, ""))
    if mode in ("Standard", "Knative", "ModelMesh"):
        return mode
    return _LEGACY.get(default, default)


def update_allowed(isvc: dict[str, Any], status_mode: str) -> bool:
    """``validateDeploymentMode`` on an update of an InferenceService whose status recorded ``status_mode``."""
    if not status_mode:
        return True
    annotation = _annotations(isvc).get(MODE)
    return annotation is None or annotation == _LEGACY.get(status_mode, status_mode)


def autoscaling_error(isvc: dict[str, Any]) -> str | None:
    """``validateAutoScalingCompExtension`` for the predictor."""
    predictor = isvc["spec"]["predictor"]
    annotations = _annotations(isvc)
    metric = predictor.get("scaleMetric")
    if annotations.get(MODE) == "Standard":
        if annotations.get(AUTOSCALER_CLASS, "hpa") != "hpa":
            return None
        metric = metric or "cpu"
        if metric not in ("cpu", "memory"):
            return f"[{metric}] is not a supported metric"
        target = predictor.get("scaleTarget")
        if target is not None and ((metric == "cpu" and target < 1) or target > 100):
            return "the target utilization percentage should be a [1-100] integer"
        return None
    if annotations.get(KNATIVE_CLASS) == KNATIVE_HPA:
        return None if (metric or "cpu") in ("cpu", "memory") else f"[{metric}] is not a supported metric"
    metric = metric or "concurrency"
    if metric not in ("concurrency", "rps"):
        return f"[{metric}] is not a supported metric"
    return None


def knative_annotations(isvc: dict[str, Any]) -> dict[str, str]:
    """The Knative revision annotations KServe derives in Knative mode (``SetAutoScalingAnnotations``)."""
    predictor = isvc["spec"]["predictor"]
    out = {k: v for k, v in _annotations(isvc).items() if k.startswith("autoscaling.knative.dev/")}
    out.setdefault(KNATIVE_CLASS, "kpa.autoscaling.knative.dev")
    if "scaleTarget" in predictor:
        out["autoscaling.knative.dev/target"] = str(predictor["scaleTarget"])
    if "scaleMetric" in predictor:
        out["autoscaling.knative.dev/metric"] = predictor["scaleMetric"]
    out["autoscaling.knative.dev/min-scale"] = str(predictor.get("minReplicas", 1))
    if predictor.get("maxReplicas"):
        out["autoscaling.knative.dev/max-scale"] = str(predictor["maxReplicas"])
    return out


def canary_applies(isvc: dict[str, Any], default: str = "Serverless") -> bool:
    """``canaryTrafficPercent`` has an effect only through the Knative reconciler."""
    return "canaryTrafficPercent" in isvc["spec"]["predictor"] and deployment_mode(isvc, default=default) == "Knative"


def runtime_image(isvc: dict[str, Any], runtime: str = DEFAULT_RUNTIME_IMAGE) -> str:
    """``UpdateImageTag`` for the TensorFlow runtime container."""
    model = isvc["spec"]["predictor"]["model"]
    if "@sha256:" in runtime:
        return runtime
    repository, _, _ = runtime.rpartition(":")
    if "runtimeVersion" in model:
        return f"{repository}:{model['runtimeVersion']}"
    gpu = "nvidia.com/gpu" in model.get("resources", {}).get("limits", {})
    return runtime + "-gpu" if gpu and not runtime.endswith("-gpu") else runtime


def gpu_runtime_error(isvc: dict[str, Any]) -> str | None:
    """``TFServingSpec.validateGPU`` (KServe's check of a TensorFlow predictor's runtimeVersion)."""
    model = isvc["spec"]["predictor"]["model"]
    version = model.get("runtimeVersion")
    if version is None:
        return None
    gpu = "nvidia.com/gpu" in model.get("resources", {}).get("limits", {})
    if gpu and "-gpu" not in version:
        return "Tensorflow RuntimeVersion is not GPU enabled but GPU resources are requested"
    if not gpu and "-gpu" in version:
        return "Tensorflow RuntimeVersion is GPU enabled but GPU resources are not requested"
    return None


def served_model_name(isvc: dict[str, Any]) -> str:
    """The TensorFlow runtime's ``--model_name={{.Name}}``: the InferenceService's name."""
    return isvc["metadata"]["name"]


def download_s3(uri: str, keys: dict[str, int]) -> dict[str, int]:
    """What ``_download_s3`` writes under /mnt/models for ``uri`` from a bucket holding ``keys`` (key → size):
    ``{path relative to /mnt/models: size}``."""
    bucket_path = uri.split("://", 1)[1].partition("/")[2]
    out: dict[str, int] = {}
    for key in sorted(keys):
        if not key.startswith(bucket_path) or key.endswith("/") or keys[key] == 0:
            continue
        if key == bucket_path:
            out[key.rsplit("/", 1)[-1]] = keys[key]
            break
        out[key.removeprefix(bucket_path).lstrip("/")] = keys[key]
    if not out:
        raise LookupError(f"Failed to fetch model. No model found in {bucket_path}.")
    return out


def storage_initializer_env(service_account: dict[str, Any], secrets: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The storage initializer's S3/GCS environment from the predictor's ServiceAccount and the Secrets it
    lists (``CreateSecretVolumeAndEnvFromServiceAccount``, ``mountSecretCredential``, ``BuildS3EnvVars``).
    Values from Secret keys are shown as ``secret:<name>/<key>``."""
    env: dict[str, str] = {}
    annotations = service_account["metadata"].get("annotations") or {}
    if IRSA in annotations:
        env.update(_s3_env(annotations, {}))
    for reference in service_account.get("secrets", []):
        secret = secrets[reference["name"]]  # a missing Secret fails the pod's creation
        data = secret.get("data", {})
        if "awsSecretAccessKey" in data:
            env["AWS_ACCESS_KEY_ID"] = f"secret:{reference['name']}/awsAccessKeyID"
            env["AWS_SECRET_ACCESS_KEY"] = f"secret:{reference['name']}/awsSecretAccessKey"
            env.update(_s3_env(secret["metadata"].get("annotations") or {}, data))
        elif "gcloud-application-credentials.json" in data:
            env["GOOGLE_APPLICATION_CREDENTIALS"] = "/var/secrets/gcloud-application-credentials.json"
    return env


def _s3_env(annotations: dict[str, str], data: dict[str, str]) -> dict[str, str]:
    def value(annotation: str, key: str) -> str:
        return annotations.get(f"serving.kserve.io/{annotation}", data.get(key, ""))

    env: dict[str, str] = {}
    endpoint = value("s3-endpoint", "S3_ENDPOINT").strip()
    if endpoint:
        if endpoint.lower().startswith("https://"):
            env.update(S3_USE_HTTPS="1", S3_ENDPOINT=endpoint[8:], AWS_ENDPOINT_URL=endpoint)
        elif endpoint.lower().startswith("http://"):
            env.update(S3_USE_HTTPS="0", S3_ENDPOINT=endpoint[7:], AWS_ENDPOINT_URL=endpoint)
        else:
            https = value("s3-usehttps", "S3_USE_HTTPS")
            if https:
                env["S3_USE_HTTPS"] = https
            env["S3_ENDPOINT"] = endpoint
            env["AWS_ENDPOINT_URL"] = ("http://" if https == "0" else "https://") + endpoint
    region = value("s3-region", "AWS_DEFAULT_REGION")
    if region:
        env["AWS_DEFAULT_REGION"] = region
    return env
