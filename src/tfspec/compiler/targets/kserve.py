"""kserve target: a KServe ``InferenceService`` (``serving.kserve.io/v1beta1``) serving the SavedModel.

KServe's TensorFlow runtime runs TF Serving on the versions its storage initializer downloads from
``storageUri`` (the target's model store, where ``tfspec run`` uploads each version) into
``/mnt/models``. Files (under ``<target>/``): ``kubernetes/inferenceservice.yaml`` and
``kubernetes/kustomization.yaml``.

Canary: with ``canary_traffic_percent`` KServe keeps the previous revision serving the rest of the
traffic; the pods of a revision download the store once at start-up, so each revision keeps the version
that was newest when it started. Rollback is setting the percentage to 0 in Git, promotion removing it.
"""

from __future__ import annotations

from typing import Any

from tfspec.spec.document import Spec
from tfspec.spec.errors import Diagnostic
from tfspec.spec.targets import KserveTarget

from ..kube_names import LABEL_VALUE, OBJECT_NAME, GeneratedName
from ..render import render_template
from ..resolve import ResolvedSpec
from ..versions import SERVING_IMAGE
from . import kubernetes as k8s
from .common import base_context, object_name
from .registry import TargetKind, register
from .tf_serving import plan_saved_model_serving

__all__ = ["render_kserve", "API_VERSION", "MODEL_FORMAT", "RULES", "inference_service"]

API_VERSION = "serving.kserve.io/v1beta1"
MODEL_FORMAT = "tensorflow"
# KServe's TensorFlow runtime container.
CONTAINER_NAME = "kserve-container"


def inference_service(resolved: ResolvedSpec, target: KserveTarget) -> dict[str, Any]:
    """The ``spec`` of the InferenceService, as plain data in a fixed key order."""
    autoscale = target.autoscale
    predictor: dict[str, Any] = {
        "minReplicas": autoscale.min,
        "maxReplicas": autoscale.max,
        "scaleMetric": "cpu",
        "scaleTarget": autoscale.target_cpu_percent,
    }
    if target.canary_traffic_percent is not None:
        predictor["canaryTrafficPercent"] = target.canary_traffic_percent
    if target.service_account:
        predictor["serviceAccountName"] = target.service_account
    predictor["model"] = {
        "modelFormat": {"name": MODEL_FORMAT},
        "runtimeVersion": target.runtime_version,
        "storageUri": target.model_store.base_path,
        "resources": k8s.resources(target.resources, target.gpus),
    }
    return {"predictor": predictor}


def render_kserve(resolved: ResolvedSpec, target: KserveTarget, served: str | None = None) -> dict[str, str]:
    t = target.name
    context = base_context(resolved, target)
    name = object_name(resolved, target)
    kube = {
        **context,
        "api_version": API_VERSION,
        "namespace": target.namespace,
        "labels": k8s.labels(resolved, name, "serving"),
        "annotations": k8s.annotations(resolved),
        "spec": inference_service(resolved, target),
        "resources_list": ["inferenceservice.yaml"],
    }
    files = {f"{t}/kubernetes/inferenceservice.yaml": render_template("kserve/inferenceservice.yaml.j2", **kube)}
    files[f"{t}/kubernetes/kustomization.yaml"] = render_template("kserve/kustomization.yaml.j2", **kube)
    return files


# --- validation rules (run by compiler/validate.py) --------------------------------------------------

def store_scheme(r: ResolvedSpec) -> list[Diagnostic]:
    """An ``endpoint_url`` only makes sense for an S3-compatible store."""
    out = []
    for index, target in enumerate(r.spec.targets):
        store = getattr(target, "model_store", None)
        if store is not None and store.endpoint_url and not store.base_path.startswith("s3://"):
            out.append(r.diagnostic(("targets", index, "model_store", "endpoint_url"),
                                    "endpoint_url is for S3-compatible stores, the base_path is not s3://",
                                    "drop endpoint_url, or use an s3:// base_path"))
    return out


RULES = (store_scheme,)

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


TARGET = register(TargetKind("kserve", render=render_kserve, plan_steps=plan_saved_model_serving,
                             defaults=kserve_defaults, names=kserve_names))
