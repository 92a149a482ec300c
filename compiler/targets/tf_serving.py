"""tf_serving target: TF Serving configs, the serving Dockerfile, Kubernetes manifests and client examples.

Files (under ``<target>/``):

* ``config/models.config``, ``config/batching_parameters.txt``, ``config/monitoring.config``: TF Serving
  text protos (ModelServerConfig, BatchingParameters, MonitoringConfig).
* ``Dockerfile``: the pinned ``tensorflow/serving`` image (``-gpu`` with GPUs), configs and SavedModel
  copied in, non-root, the server flags the configs need. Build context: this folder, after ``tfspec run``
  placed the SavedModel under ``models/<name>/<version>/``.
* ``kubernetes/``: a kustomize base (ConfigMap, Deployment, Service, PodDisruptionBudget, HPA).
* ``clients/``: ``predict_rest.sh`` + ``request.json`` (curl) and ``predict_grpc.py`` (PredictRequest).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tfspec.plan import SavedModelBundleParams, SavedModelVerifyParams, WarmupParams
from tfspec.spec.targets import TfServingTarget

from ..render import render_template
from ..resolve import ResolvedSpec
from ..naming import serving_image_name
from ..versions import serving_image
from . import kubernetes as k8s
from .registry import PlanContext, TargetKind, dump, register
from .common import base_context, dockerfile_quote, object_name, python_literal

__all__ = ["render_tf_serving", "GRPC_PORT", "REST_PORT", "CONFIG_DIR", "MODEL_ROOT", "METRICS_PATH", "SERVING_UID",
           "server_flags", "models_config_context"]

GRPC_PORT = 8500
REST_PORT = 8501
CONFIG_DIR = "/etc/tfserving"
MODEL_ROOT = "/models"
METRICS_PATH = "/monitoring/prometheus/metrics"
SERVING_BINARY = "/usr/bin/tensorflow_model_server"
# The tensorflow/serving image has no non-root user; a fixed high UID keeps clear of host users.
SERVING_UID = 65532
SIGNATURE = "serving_default"

MODELS_CONFIG = "models.config"
BATCHING_FILE = "batching_parameters.txt"
MONITORING_FILE = "monitoring.config"


def server_flags(resolved: ResolvedSpec, target: TfServingTarget) -> list[str]:
    """``tensorflow_model_server`` flags: ports, the model config, and what each config file needs."""
    flags = [
        f"--port={GRPC_PORT}",
        f"--rest_api_port={REST_PORT}",
        f"--model_config_file={CONFIG_DIR}/{MODELS_CONFIG}",
    ]
    if target.batching is not None:
        # Batching is off unless both flags are given.
        flags += ["--enable_batching=true", f"--batching_parameters_file={CONFIG_DIR}/{BATCHING_FILE}"]
    if target.monitoring:
        flags.append(f"--monitoring_config_file={CONFIG_DIR}/{MONITORING_FILE}")
    if target.warmup is not None:
        flags.append("--enable_model_warmup=true")
    return flags


def models_config_context(resolved: ResolvedSpec, target: TfServingTarget) -> dict[str, Any]:
    policy = target.version_policy
    return {
        "model_name": resolved.spec.name,
        "base_path": f"{MODEL_ROOT}/{resolved.spec.name}",
        "policy_kind": policy.kind,
        "num_versions": getattr(policy, "num_versions", 1),
        "versions": sorted(getattr(policy, "versions", [])),
        "version_labels": sorted(target.version_labels.items()),
    }


def _batching_context(target: TfServingTarget) -> dict[str, Any] | None:
    b = target.batching
    if b is None:
        return None
    return {
        "wrapped": [
            ("max_batch_size", b.max_batch_size),
            ("batch_timeout_micros", b.batch_timeout_micros),
            ("max_enqueued_batches", b.max_enqueued_batches),
            ("num_batch_threads", b.num_batch_threads),
        ],
        "allowed_batch_sizes": list(b.allowed_batch_sizes or []),
        "pad_variable_length_inputs": "true" if b.pad_variable_length_inputs else "false",
    }


def _zeros(shape: tuple[int, ...], dtype: str) -> Any:
    """A zero example of ``shape`` as nested lists (the REST request body)."""
    zero: Any = 0.0 if dtype.startswith("float") else 0
    for size in reversed(shape):
        zero = [zero] * size
    return zero


def _request_json(resolved: ResolvedSpec) -> str:
    body = {"signature_name": SIGNATURE, "instances": [{resolved.input_name: _zeros(resolved.input_shape, resolved.input_dtype)}]}
    return json.dumps(body, separators=(", ", ": ")) + "\n"


def _probe(resolved: ResolvedSpec, period: int, failures: int, initial_delay: int = 0) -> dict[str, Any]:
    probe: dict[str, Any] = {"httpGet": {"path": f"/v1/models/{resolved.spec.name}", "port": "http"}}
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    probe.update({"periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures})
    return probe


def _kubernetes_context(resolved: ResolvedSpec, target: TfServingTarget, configs: dict[str, str],
                        image: str) -> dict[str, Any]:
    kube = target.kubernetes
    assert kube is not None
    name = object_name(resolved, target)
    replicas = kube.autoscale.min if kube.autoscale else kube.replicas
    config_hash = hashlib.sha256(json.dumps(configs, sort_keys=True).encode("utf-8")).hexdigest()[:10]
    pod_annotations: dict[str, str] = {}
    if target.monitoring:
        pod_annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(REST_PORT),
                           "prometheus.io/path": METRICS_PATH}
    container = {
        "image": image,
        "resources": k8s.resources(kube.resources, target.gpus),
        "securityContext": k8s.container_security_context(),
        "startupProbe": _probe(resolved, period=5, failures=60),
        "readinessProbe": _probe(resolved, period=10, failures=3),
        "livenessProbe": _probe(resolved, period=20, failures=3),
    }
    return {
        "namespace": kube.namespace,
        "labels": k8s.labels(resolved, name, "serving"),
        "selector": k8s.selector_labels(resolved, name, "serving"),
        "annotations": k8s.annotations(resolved),
        "pod_annotations": pod_annotations,
        "replicas": None if kube.autoscale else kube.replicas,
        "autoscale": kube.autoscale.model_dump() if kube.autoscale else None,
        "min_available": kube.min_available,
        "service_type": kube.service_type,
        "config_map": f"{name}-config-{config_hash}",
        "configs": sorted(configs.items()),
        "container": container,
        "pod_security_context": k8s.pod_security_context(SERVING_UID),
        "node_selector": k8s.node_selector(kube.node_selector, target.gpus),
        "tolerations": k8s.tolerations(kube.tolerations, target.gpus),
        "grpc_port": GRPC_PORT,
        "rest_port": REST_PORT,
        "config_dir": CONFIG_DIR,
        "resources_list": ["configmap.yaml", "deployment.yaml", "service.yaml"]
        # One replica gets no PodDisruptionBudget: minAvailable 1 of 1 would block every node drain.
        + (["poddisruptionbudget.yaml"] if replicas > 1 else [])
        + (["horizontalpodautoscaler.yaml"] if kube.autoscale else []),
    }


def render_tf_serving(resolved: ResolvedSpec, target: TfServingTarget) -> dict[str, str]:
    t = target.name
    name = resolved.spec.name
    context = base_context(resolved, target)
    files: dict[str, str] = {}

    configs: dict[str, str] = {
        MODELS_CONFIG: render_template("tf_serving/models.config.j2", **context, **models_config_context(resolved, target)),
    }
    batching = _batching_context(target)
    if batching is not None:
        configs[BATCHING_FILE] = render_template("tf_serving/batching_parameters.txt.j2", **context, **batching)
    if target.monitoring:
        configs[MONITORING_FILE] = render_template("tf_serving/monitoring.config.j2", **context, metrics_path=METRICS_PATH)
    for filename, text in configs.items():
        files[f"{t}/config/{filename}"] = text

    assert target.serving_version is not None  # filled by resolve
    base_image = serving_image(target.serving_version, target.gpus)
    # resolve names the image of a target with Kubernetes manifests; without them only the Dockerfile's label
    image_name = target.kubernetes.image if target.kubernetes and target.kubernetes.image else serving_image_name(name)
    labels = [
        ("org.opencontainers.image.title", image_name),
        ("org.opencontainers.image.version", str(resolved.spec.version)),
        ("org.opencontainers.image.base.name", f"docker.io/{base_image}"),
    ]
    if resolved.spec.description:
        labels.insert(1, ("org.opencontainers.image.description", resolved.spec.description))
    labels.append(("io.tfspec.spec.sha256", resolved.spec_sha256))
    files[f"{t}/Dockerfile"] = render_template(
        "tf_serving/Dockerfile.j2", **context,
        base_image=base_image,
        oci_labels=[(key, dockerfile_quote(value)) for key, value in labels],
        config_dir=CONFIG_DIR,
        model_dir=f"{MODEL_ROOT}/{name}",
        uid=SERVING_UID,
        ports=[GRPC_PORT, REST_PORT],
        entrypoint=[json.dumps(word) for word in [SERVING_BINARY, *server_flags(resolved, target)]],
        image_tag=f"{image_name}:{resolved.spec.version}",
        gpus=target.gpus,
    )

    if target.kubernetes is not None:
        kube_context = _kubernetes_context(resolved, target, configs, f"{image_name}:{resolved.spec.version}")
        for template in kube_context["resources_list"] + ["kustomization.yaml"]:
            files[f"{t}/kubernetes/{template}"] = render_template(f"tf_serving/kubernetes/{template}.j2", **context,
                                                                   **kube_context)

    files[f"{t}/clients/request.json"] = _request_json(resolved)
    client_context = {
        **context,
        "model_name": name,
        "signature": SIGNATURE,
        "input_name": resolved.input_name,
        "output_name": resolved.output_name,
        "input_shape": list(resolved.input_shape),
        "input_dtype": resolved.input_dtype,
        "grpc_port": GRPC_PORT,
        "rest_port": REST_PORT,
        "py": {
            "model_name": python_literal(name),
            "signature": python_literal(SIGNATURE),
            "input_name": python_literal(resolved.input_name),
            "output_name": python_literal(resolved.output_name),
            "input_shape": python_literal(tuple(resolved.input_shape)),
            "input_dtype": python_literal(resolved.input_dtype),
            "target": python_literal(f"localhost:{GRPC_PORT}"),
        },
    }
    files[f"{t}/clients/predict_rest.sh"] = render_template("tf_serving/clients/predict_rest.sh.j2", **client_context)
    files[f"{t}/clients/predict_grpc.py"] = render_template("tf_serving/clients/predict_grpc.py.j2", **client_context)
    return files


def plan_tf_serving(context: PlanContext, resolved: ResolvedSpec, target: TfServingTarget) -> None:
    """warmup records (optional) → verify (the SavedModel, gated) → bundle (``models/<name>/<version>/``)."""
    spec, t = resolved.spec, target.name
    # a SavedModel served as it is: its chosen signature, whose keys are read from it at run time
    as_is = bool(getattr(spec.model, "serve_as_is", False))
    signature = spec.model.signature if as_is else "serving_default"
    input_name, output_name = (None, None) if as_is else (resolved.input_name, resolved.output_name)
    inputs = [context.export]
    if target.warmup is not None:
        inputs.append(context.add(f"{t}.warmup", "warmup", WarmupParams(
            requests=target.warmup.requests, model_name=spec.name, signature=signature,
            input_name=input_name,
        ), [context.export, context.data], ["tf_serving_warmup_requests"], t))
    verify = context.add(f"{t}.verify", "verify", SavedModelVerifyParams(
        artifact="saved_model", gates=dump(target.gates), metric=context.metric,
        input_name=input_name, output_name=output_name, signature=signature,
    ), [context.export, context.evaluate, context.data], ["verify.json"], t)
    model_dir = f"{t}/models/{spec.name}/{spec.version}"
    context.add(f"{t}.bundle", "bundle", SavedModelBundleParams(
        artifact="saved_model", model_dir=model_dir, name=spec.name, version=spec.version,
    ), inputs + [verify], [model_dir], t)


TARGET = register(TargetKind("tf_serving", render=render_tf_serving, plan_steps=plan_tf_serving))
