"""kserve target: a KServe ``InferenceService`` (``serving.kserve.io/v1beta1``) serving the SavedModel.

KServe's TensorFlow runtime (``kserve-tensorflow-serving``) runs TF Serving with ``--model_name=<the
InferenceService's name>`` and ``--model_base_path=/mnt/models``, on what its storage initializer
downloads from ``storageUri``. Files (under ``<target>/``): ``kubernetes/inferenceservice.yaml``,
``kubernetes/kustomization.yaml`` (with ``kustomizeconfig.yaml``: a name prefix renames the generated
ServiceAccount and the InferenceService's reference to it alike) and, when the store needs one,
``kubernetes/serviceaccount.yaml``.

What the controllers accept, from their source (the tests' oracles in ``tests/oracles/`` cite it):

* the deployment mode is stated (``serving.kserve.io/deploymentMode``): ``Knative`` scales with Knative's
  pod autoscaler (KPA), which accepts only the ``concurrency`` and ``rps`` metrics; ``Standard`` uses a
  HorizontalPodAutoscaler on ``cpu`` or ``memory`` and ignores ``canaryTrafficPercent``;
* one ``storageUri`` per version: ``tfspec run`` uploads version N under ``<base_path>/N/N/`` and the
  predictor downloads ``<base_path>/N/`` (the trailing slash: the initializer lists by key prefix, and
  ``.../3`` would also match ``.../30``), so ``/mnt/models`` holds exactly ``N/``: a canary's previous
  revision keeps its version, a restarted pod downloads the same one again;
* ``gpus`` > 0 appends ``-gpu`` to ``runtimeVersion`` (the runtime image's tag is replaced by it; KServe's
  TensorFlow predictor rejects GPUs on a tag without ``-gpu``);
* store settings go where KServe's credential builder reads them: a ServiceAccount listing the
  ``credentials.kubernetes_secret``; the S3 endpoint and region are read from that Secret's own annotations.
"""

from __future__ import annotations

from typing import Any

from tfspec.spec.document import Spec
from tfspec.base.errors import Diagnostic
from tfspec.spec.targets import KserveTarget

from ..kube_names import LABEL_VALUE, OBJECT_NAME, GeneratedName
from ..render import render_template
from ..resolve import ResolvedSpec
from tfspec.base.versions import SERVING_IMAGE
from . import kubernetes as k8s
from .common import base_context, object_name
from .model_store import (earlier_secret_spelling, secret_key, store_credentials_name_a_secret,
                          store_endpoint_is_s3)
from .registry import MEASURED_METRICS, PlanContext, TargetKind, Workload, register
from .tf_serving import plan_saved_model_serving, plan_store_upload

__all__ = ["render_kserve", "API_VERSION", "MODEL_FORMAT", "RULES", "inference_service", "DEPLOYMENT_MODE",
           "S3_ANNOTATIONS", "store_annotations", "storage_uri", "runtime_tag", "scale_metric",
           "store_service_account"]

API_VERSION = "serving.kserve.io/v1beta1"
MODEL_FORMAT = "tensorflow"
# KServe's TensorFlow runtime container.
CONTAINER_NAME = "kserve-container"
DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
GPU_SUFFIX = "-gpu"
# Metrics each mode's autoscaler accepts, and the one it uses when none is named.
MODE_METRICS: dict[str, tuple[str, ...]] = {"Knative": ("concurrency", "rps"), "Standard": ("cpu", "memory")}
# KServe's credential builder (pkg/credentials/s3/s3_secret.go): annotation → what it sets.
S3_ANNOTATIONS = {"endpoint": "serving.kserve.io/s3-endpoint", "usehttps": "serving.kserve.io/s3-usehttps",
                  "region": "serving.kserve.io/s3-region"}


def scale_metric(target: KserveTarget) -> str:
    """The autoscaling metric: the spec's, or the mode's first (concurrency / cpu)."""
    return target.autoscale.metric or MODE_METRICS[target.deployment_mode][0]


def runtime_tag(target: KserveTarget) -> str:
    """``runtimeVersion``: the TF Serving tag, ``-gpu`` when the predictor gets GPUs."""
    assert target.runtime_version is not None  # filled by resolve
    version = target.runtime_version
    return version + GPU_SUFFIX if target.gpus > 0 and not version.endswith(GPU_SUFFIX) else version


def storage_uri(resolved: ResolvedSpec, target: KserveTarget) -> str:
    """``<base_path>/<version>/``: the folder holding only ``<version>/`` (see the module docstring)."""
    return f"{target.model_store.base_path.rstrip('/')}/{resolved.spec.version}/"


def store_annotations(target: KserveTarget) -> dict[str, str]:
    """The ``serving.kserve.io/s3-*`` annotations for the store's endpoint and region (empty for gs://)."""
    store = target.model_store
    out: dict[str, str] = {}
    if store.endpoint_url:
        scheme, _, host = store.endpoint_url.partition("://")
        out[S3_ANNOTATIONS["endpoint"]] = host.rstrip("/")
        out[S3_ANNOTATIONS["usehttps"]] = "1" if scheme == "https" else "0"
    if store.region:
        out[S3_ANNOTATIONS["region"]] = store.region
    return out


def store_service_account(resolved: ResolvedSpec, target: KserveTarget) -> str | None:
    """The generated ServiceAccount's name: one is rendered when the store names a Secret and the spec
    names no service account of its own."""
    if target.service_account is None and target.model_store.credentials.kubernetes_secret:
        return object_name(resolved, target)
    return None


def inference_service(resolved: ResolvedSpec, target: KserveTarget) -> dict[str, Any]:
    """The ``spec`` of the InferenceService, as plain data in a fixed key order."""
    autoscale = target.autoscale
    predictor: dict[str, Any] = {
        "minReplicas": autoscale.min,
        "maxReplicas": autoscale.max,
        "scaleMetric": scale_metric(target),
    }
    if autoscale.target is not None:
        predictor["scaleTarget"] = autoscale.target
    if target.canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = target.canary_traffic_percent
    account = target.service_account or store_service_account(resolved, target)
    if account:
        predictor["serviceAccountName"] = account
    if target.image_pull_secrets:
        predictor["imagePullSecrets"] = [{"name": secret} for secret in target.image_pull_secrets]
    node_selector = k8s.node_selector(target.node_selector, target.gpus)
    if node_selector:
        predictor["nodeSelector"] = node_selector
    tolerations = k8s.tolerations(target.tolerations, target.gpus)
    if tolerations:
        predictor["tolerations"] = tolerations
    predictor["model"] = {
        "modelFormat": {"name": MODEL_FORMAT},
        "runtimeVersion": runtime_tag(target),
        "storageUri": storage_uri(resolved, target),
        "resources": k8s.resources(target.resources, target.gpus),
    }
    return {"predictor": predictor}


def render_kserve(resolved: ResolvedSpec, target: KserveTarget, served: str | None = None) -> dict[str, str]:
    t = target.name
    context = base_context(resolved, target)
    name = object_name(resolved, target)
    account = store_service_account(resolved, target)
    resources = ["inferenceservice.yaml"] + (["serviceaccount.yaml"] if account else [])
    kube = {
        **context,
        "api_version": API_VERSION,
        "namespace": target.namespace,
        "labels": k8s.labels(resolved, name, "serving"),
        "annotations": {DEPLOYMENT_MODE: target.deployment_mode, **k8s.annotations(resolved)},
        "spec": inference_service(resolved, target),
        "resources_list": sorted(resources),
        "service_account": account,
        "credentials_secret": target.model_store.credentials.kubernetes_secret,
        "store_annotations": store_annotations(target),
        "model_name": name,
    }
    files = {f"{t}/kubernetes/{resource}": render_template(f"kserve/{resource}.j2", **kube) for resource in resources}
    files[f"{t}/kubernetes/kustomization.yaml"] = render_template("kserve/kustomization.yaml.j2", **kube)
    files[f"{t}/kubernetes/kustomizeconfig.yaml"] = render_template("kserve/kustomizeconfig.yaml.j2", **kube)
    return files


# --- validation rules (the kind's ``rules``, run by compiler/validate.py for each kserve target) -----------

def metric_fits_the_mode(r: ResolvedSpec, index: int, target: KserveTarget) -> list[Diagnostic]:
    """Knative's KPA accepts only concurrency and rps (knative/serving pkg/apis/autoscaling
    annotation_validation.go validateMetric); KServe's Standard mode's HPA only cpu and memory."""
    out = []
    metric, mode = scale_metric(target), target.deployment_mode
    if metric not in MODE_METRICS[mode]:
        other = next(m for m, metrics in MODE_METRICS.items() if metric in metrics)
        out.append(r.diagnostic(("targets", index, "autoscale", "metric"),
                                f"deployment_mode {mode} does not scale on {metric} (it takes "
                                f"{' or '.join(MODE_METRICS[mode])})",
                                f"use metric {MODE_METRICS[mode][0]}, or deployment_mode {other}"))
    if metric == "cpu" and target.autoscale.target is not None and target.autoscale.target > 100:
        out.append(r.diagnostic(("targets", index, "autoscale", "target"),
                                "a cpu target is a utilisation percentage of 1-100", "use a target of at most 100"))
    return out


def canary_needs_knative(r: ResolvedSpec, index: int, target: KserveTarget) -> list[Diagnostic]:
    """Only the Knative reconciler splits traffic between revisions; Standard mode ignores the field."""
    if target.canary_traffic_percent is None:
        return []
    out = []
    if target.deployment_mode != "Knative":
        out.append(r.diagnostic(("targets", index, "canary_traffic_percent"),
                                f"deployment_mode {target.deployment_mode} has no revisions to split "
                                "traffic between: canaryTrafficPercent would be ignored",
                                "use deployment_mode Knative, or drop canary_traffic_percent"))
    if target.model_store.keep_versions < 2:
        out.append(r.diagnostic(("targets", index, "model_store", "keep_versions"),
                                "a canary serves two versions, but the store keeps only one: the upload "
                                "of the new version would delete the one the previous revision serves",
                                "keep_versions: 2 or more"))
    return out


def gpu_runtime_tag(r: ResolvedSpec, index: int, target: KserveTarget) -> list[Diagnostic]:
    """KServe's TensorFlow predictor refuses a ``-gpu`` runtime without GPUs (and the reverse)."""
    if target.gpus != 0 or not (target.runtime_version or "").endswith(GPU_SUFFIX):
        return []
    return [r.diagnostic(("targets", index, "runtime_version"), "a -gpu runtime without gpus: KServe rejects it",
                         "drop -gpu (tfspec appends it when gpus > 0), or set gpus")]


def store_settings_reach_kserve(r: ResolvedSpec, index: int, target: KserveTarget) -> list[Diagnostic]:
    """KServe reads an S3 endpoint and region from the Secret a ServiceAccount lists, or from the
    ServiceAccount itself only when it carries IRSA's role annotation: tfspec renders the first, so
    endpoint and region need a credentials Secret; with a service account of the user's own they
    belong on that account."""
    out = []
    store = target.model_store
    secret = store.credentials.kubernetes_secret
    for field in ("endpoint_url", "region"):
        if getattr(store, field) is None:
            continue
        if target.service_account is not None:
            out.append(r.diagnostic(("targets", index, "model_store", field),
                                    f"KServe does not see {field} here: it reads it from the service "
                                    f"account {target.service_account!r} (serving.kserve.io/s3-* annotations)",
                                    "annotate your ServiceAccount and drop the field, or drop service_account "
                                    "and name a credentials.kubernetes_secret"))
        elif secret is None:
            out.append(r.diagnostic(("targets", index, "model_store", field),
                                    f"KServe reads {field} from the store's credentials Secret, and none is named",
                                    "name a credentials.kubernetes_secret (awsAccessKeyID, awsSecretAccessKey)"))
    if target.service_account is not None and secret is not None:
        out.append(r.diagnostic(secret_key(index, target.model_store),
                                f"KServe finds the store's Secret through the service account "
                                f"{target.service_account!r}, not through this field",
                                "list the Secret in your ServiceAccount's secrets and drop the credentials Secret, "
                                "or drop service_account (tfspec then renders one)"))
    return out


def secret_annotations_needed(r: ResolvedSpec, index: int, target: KserveTarget) -> list[Diagnostic]:
    """A build warning: the endpoint and region must be on the user's Secret, which tfspec never writes."""
    annotations = store_annotations(target)
    secret = target.model_store.credentials.kubernetes_secret
    if not annotations or secret is None or target.service_account is not None:
        return []
    pairs = " ".join(f"{key}={value}" for key, value in annotations.items())
    return [r.diagnostic(secret_key(index, target.model_store),
                         f"warning: KServe reads the S3 endpoint and region from the Secret itself: run kubectl "
                         f"annotate secret {secret} {pairs}",
                         "the command is also in kubernetes/serviceaccount.yaml")]


RULES = (store_endpoint_is_s3, store_credentials_name_a_secret, metric_fits_the_mode, canary_needs_knative,
         gpu_runtime_tag, store_settings_reach_kserve)


def kserve_defaults(spec: Spec, target: KserveTarget) -> KserveTarget:
    """The TF Serving runtime version tfspec pins for its own serving images."""
    if target.runtime_version is not None:
        return target
    return target.model_copy(update={"runtime_version": SERVING_IMAGE["version"]})


def kserve_names(r: ResolvedSpec, index: int, target: KserveTarget) -> list[GeneratedName]:
    """The InferenceService ``<name>-<target>`` and its instance label."""
    name = object_name(r, target)
    at, hint = ("targets", index, "name"), "shorten the spec name or the target name"
    return [GeneratedName(name, LABEL_VALUE, "app.kubernetes.io/instance label value", at, hint),
            GeneratedName(name, OBJECT_NAME, "InferenceService name", at, hint)]


def upload_kserve(context: PlanContext, resolved: ResolvedSpec, target: KserveTarget) -> None:
    """The upload: each version into a folder of its own (its ``storageUri``)."""
    plan_store_upload(context, resolved, target, [resolved.spec.version], pinned=True)


def kserve_workload(target: KserveTarget) -> Workload:
    """The predictor's pods, between the autoscaler's minimum and maximum."""
    return Workload((), target.resources, tuple(target.tolerations), target.gpus, target.autoscale.min,
                    target.autoscale.max)


def kserve_shipped(resolved: ResolvedSpec, target: KserveTarget) -> str:
    """What ``tfspec fleet`` lists: the folder the predictor downloads (KServe's runtime image is the cluster's)."""
    return storage_uri(resolved, target)


TARGET = register(TargetKind("kserve", render=render_kserve, rules=RULES, plan_steps=plan_saved_model_serving,
                             defaults=kserve_defaults, warnings=(secret_annotations_needed, earlier_secret_spelling),
                             names=kserve_names, metrics=MEASURED_METRICS, workload=kserve_workload,
                             shipped=kserve_shipped, release_steps=upload_kserve, reads_saved_model=True))
