"""tf_serving target: TF Serving configs, the serving Dockerfile, Kubernetes manifests and client examples.

Files (under ``<target>/``):

* ``config/models.config``, ``config/batching_parameters.txt``, ``config/monitoring.config``: TF Serving
  text protos (ModelServerConfig, BatchingParameters, MonitoringConfig).
* ``Dockerfile``: the pinned ``tensorflow/serving`` image (``-gpu`` with GPUs), configs and SavedModel
  copied in, non-root, the server flags the configs need. Build context: this folder, after ``tfspec run``
  placed the SavedModel under ``models/<name>/<version>/``. With a ``model_store`` the image carries only
  the configs and the server reads the versions from object storage.
* ``kubernetes/``: a kustomize base (ConfigMap, Deployment, Service, PodDisruptionBudget, HPA).
* ``clients/``: ``predict_rest.sh`` + ``request.json`` (curl) and ``predict_grpc.py`` (PredictRequest), both
  taking an optional version label (``stable``, ``canary``).

The image is ``<repository>:<version>-<content hash>``: the hash covers what the image holds (the plan's
fingerprint of the bundle step, i.e. the SavedModel and warmup records, the configs, the base image and
the server flags), so a retrain of the same version gets a new tag; a repository pinned by digest is used
as given.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from tfspec.plan import SavedModelBundleParams, SavedModelVerifyParams, WarmupParams
from tfspec.spec.document import Spec
from tfspec.spec.errors import Diagnostic
from tfspec.spec.targets import KserveTarget, ModelStore, SpecificVersions, TfServingTarget

from ..quantities import quantity_value
from ..render import render_template
from ..resolve import ResolvedSpec
from ..versions import SERVING_IMAGE, serving_image
from . import kubernetes as k8s
from .common import (PULL_POLICY, base_context, content_tag, dockerfile_quote, image_reference, image_repository,
                     object_name, qualified_image, python_literal, without_header)
from .model_store import upload_params
from .registry import PlanContext, TargetKind, dump, register

__all__ = ["render_tf_serving", "GRPC_PORT", "REST_PORT", "CONFIG_DIR", "MODEL_ROOT", "METRICS_PATH", "SERVING_UID",
           "server_flags", "thread_flags", "models_config_context", "held_versions", "named_versions", "RULES",
           "GRACE_MARGIN_SECONDS", "plan_saved_model_serving"]

GRPC_PORT = 8500
REST_PORT = 8501
CONFIG_DIR = "/etc/tfserving"
MODEL_ROOT = "/models"
METRICS_PATH = "/monitoring/prometheus/metrics"
SERVING_BINARY = "/usr/bin/tensorflow_model_server"
# The tensorflow/serving image has no non-root user; a fixed high UID keeps clear of host users.
SERVING_UID = 65532
SIGNATURE = "serving_default"

# The model store's Secret, mounted read-only; the key each scheme's client reads (an AWS shared
# credentials file, a Google service-account key).
STORE_CREDENTIALS_DIR = "/var/run/secrets/tfspec/store"
STORE_CREDENTIALS_KEYS = {"s3": "credentials", "gs": "key.json"}

# Seconds between the end of the preStop sleep and the kill: requests accepted just before it finish.
GRACE_MARGIN_SECONDS = 15

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
    if target.allow_unavailable_version_labels:
        flags.append("--allow_version_labels_for_unavailable_models=true")
    return flags


def thread_flags(cpu_limit: str) -> list[str]:
    """Thread pools sized from the pod's CPU limit; TF Serving sizes them from the node's cores otherwise
    (``rest_api_num_threads`` = 4 x the node's CPUs), far more threads than the limit can run."""
    cores = max(1, math.ceil(quantity_value(cpu_limit)))
    return [
        f"--tensorflow_intra_op_parallelism={cores}",
        f"--tensorflow_inter_op_parallelism={cores}",
        f"--rest_api_num_threads={4 * cores}",
    ]


def named_versions(target: TfServingTarget) -> dict[tuple[Any, ...], int]:
    """Every version the target names, by the key path naming it (policy entries and labels)."""
    out: dict[tuple[Any, ...], int] = {}
    policy = target.version_policy
    if policy.kind == "specific":
        for index, version in enumerate(policy.versions):
            out[("version_policy", "versions", index)] = version
    for label, version in target.version_labels.items():
        out[("version_labels", label)] = version
    return out


def held_versions(resolved: ResolvedSpec, target: TfServingTarget) -> set[int] | None:
    """Versions the served bundle holds: the image holds only this spec's version; with a model store the
    store decides (checked by ``tfspec run`` before it uploads), None."""
    return None if target.model_store is not None else {resolved.spec.version}


def models_config_context(resolved: ResolvedSpec, target: TfServingTarget) -> dict[str, Any]:
    policy = target.version_policy
    store = target.model_store
    return {
        "model_name": resolved.spec.name,
        "base_path": store.base_path if store else f"{MODEL_ROOT}/{resolved.spec.name}",
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


def input_contract(resolved: ResolvedSpec) -> str:
    """One line saying what the served model takes: raw examples, or examples preprocessed by the client."""
    pre = resolved.spec.data.preprocessing
    steps = [name for name, on in (("impute missing values", resolved.spec.data.missing_values is not None),
                                   ("rescale", pre.rescale is not None), ("normalize", pre.normalize),
                                   ("reshape", pre.reshape is not None)) if on]
    if pre.in_model:
        return (f"raw examples of shape {list(resolved.raw_input_shape or ())}, float32; "
                f"{', '.join(steps) or 'nothing'} run(s) inside the model (data.preprocessing.in_model)")
    if not steps:
        return "the examples as the data holds them (no data.preprocessing)"
    return (f"preprocessed examples: apply {', '.join(steps)} (model_info / data.preprocessing) before sending; "
            "set data.preprocessing.in_model to send raw examples")


def _request_json(resolved: ResolvedSpec) -> str:
    if resolved.raw_input_shape is not None:  # preprocessing in the model: a raw example
        instance = {resolved.input_name: _zeros(resolved.raw_input_shape, "float32")}
    else:
        instance = {i.name: _zeros(i.shape, i.dtype) for i in resolved.inputs}
    body = {"signature_name": SIGNATURE, "instances": [instance]}
    return json.dumps(body, separators=(", ", ": ")) + "\n"


def _probe(resolved: ResolvedSpec, period: int, failures: int, initial_delay: int = 0) -> dict[str, Any]:
    probe: dict[str, Any] = {"httpGet": {"path": f"/v1/models/{resolved.spec.name}", "port": "http"}}
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    probe.update({"periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures})
    return probe


def store_environment(store: ModelStore | None) -> list[dict[str, Any]]:
    """Environment of a pod reading ``store``: the S3 endpoint and region TensorFlow's S3 filesystem reads,
    and where the mounted credentials file is (the Secret is mounted as files, never copied into env)."""
    if store is None:
        return []
    env: list[dict[str, Any]] = []
    s3 = store.base_path.startswith("s3://")
    if s3:
        if store.endpoint_url:
            scheme, _, host = store.endpoint_url.partition("://")
            env += [{"name": "S3_ENDPOINT", "value": host.rstrip("/")},
                    {"name": "S3_USE_HTTPS", "value": "1" if scheme == "https" else "0"}]
        if store.region:
            env.append({"name": "AWS_REGION", "value": store.region})
    if store.credentials_secret:
        key = STORE_CREDENTIALS_KEYS["s3" if s3 else "gs"]
        variable = "AWS_SHARED_CREDENTIALS_FILE" if s3 else "GOOGLE_APPLICATION_CREDENTIALS"
        env.append({"name": variable, "value": f"{STORE_CREDENTIALS_DIR}/{key}"})
    return env


def _kubernetes_context(resolved: ResolvedSpec, target: TfServingTarget, configs: dict[str, str],
                        image: str, header: list[str]) -> dict[str, Any]:
    kube = target.kubernetes
    assert kube is not None
    name = object_name(resolved, target)
    replicas = kube.autoscale.min if kube.autoscale else kube.replicas
    # The data only: the header names the spec's sha256, and an edit elsewhere in the spec (epochs) must
    # not roll every serving pod.
    data = {filename: without_header(text, header) for filename, text in configs.items()}
    config_hash = hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()[:10]
    pod_annotations: dict[str, str] = {}
    if target.monitoring:
        pod_annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(REST_PORT),
                           "prometheus.io/path": METRICS_PATH}
    selector = k8s.selector_labels(resolved, name, "serving")
    store = target.model_store
    container: dict[str, Any] = {
        "image": image,
        "args": thread_flags(kube.resources.limits.cpu),
        "env": store_environment(store),
        "credentials_secret": store.credentials_secret if store else None,
        "credentials_dir": STORE_CREDENTIALS_DIR,
        "resources": k8s.resources(kube.resources, target.gpus),
        "securityContext": k8s.container_security_context(),
        "startupProbe": _probe(resolved, period=5, failures=60),
        "readinessProbe": _probe(resolved, period=10, failures=3),
        "livenessProbe": _probe(resolved, period=20, failures=3),
        # TF Serving exits on SIGTERM at once: keep serving while the endpoints controller and the
        # proxies stop routing to this pod (the image is Ubuntu-based and has /bin/sleep).
        "lifecycle": {"preStop": {"exec": {"command": ["/bin/sleep", str(kube.drain_seconds)]}}},
    }
    disruption = ({"minAvailable": kube.min_available} if kube.min_available is not None
                  else {"maxUnavailable": kube.max_unavailable})
    return {
        "namespace": kube.namespace,
        "labels": k8s.labels(resolved, name, "serving"),
        "selector": selector,
        "annotations": k8s.annotations(resolved),
        "pod_annotations": pod_annotations,
        "replicas": None if kube.autoscale else kube.replicas,
        "autoscale": kube.autoscale.model_dump() if kube.autoscale else None,
        "disruption": disruption,
        "service_type": kube.service_type,
        "config_map": f"{name}-config-{config_hash}",
        "configs": sorted(configs.items()),
        "container": container,
        "pull_policy": PULL_POLICY,
        "termination_grace_seconds": kube.drain_seconds + GRACE_MARGIN_SECONDS,
        "pod_security_context": k8s.pod_security_context(SERVING_UID),
        "node_selector": k8s.node_selector(kube.node_selector, target.gpus, kube.gpu_feature_discovery),
        "tolerations": k8s.tolerations(kube.tolerations, target.gpus),
        "topology_spread": k8s.topology_spread(kube.topology_spread, selector),
        "grpc_port": GRPC_PORT,
        "rest_port": REST_PORT,
        "config_dir": CONFIG_DIR,
        "resources_list": ["configmap.yaml", "deployment.yaml", "service.yaml"]
        # One replica gets no PodDisruptionBudget: it could only block node drains or allow everything.
        + (["poddisruptionbudget.yaml"] if replicas > 1 else [])
        + (["horizontalpodautoscaler.yaml"] if kube.autoscale else []),
    }


def render_tf_serving(resolved: ResolvedSpec, target: TfServingTarget, served: str | None = None) -> dict[str, str]:
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
    base_image = target.base_image or serving_image(target.serving_version, target.gpus)
    repository = image_repository(resolved, target, target.kubernetes.image if target.kubernetes else None)
    entrypoint = [SERVING_BINARY, *server_flags(resolved, target)]
    baked = target.model_store is None
    # What the image holds: the served bundle (None with a model store), the configs, base image and flags.
    tag = content_tag(resolved.spec.version, served if baked else None, base_image, entrypoint,
                      {filename: without_header(text, context["header"]) for filename, text in configs.items()})
    image = image_reference(repository, tag)
    labels = [
        ("org.opencontainers.image.title", repository.split("@")[0]),
        ("org.opencontainers.image.version", tag),
        ("org.opencontainers.image.base.name", qualified_image(base_image)),
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
        model_store=target.model_store.base_path if target.model_store else None,
        uid=SERVING_UID,
        ports=[GRPC_PORT, REST_PORT],
        entrypoint=[json.dumps(word) for word in entrypoint],
        image_tag=image,
        gpus=target.gpus,
    )

    if target.kubernetes is not None:
        kube_context = _kubernetes_context(resolved, target, configs, image, context["header"])
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
        "input_shape": list(resolved.raw_input_shape or resolved.input_shape),
        "input_dtype": "float32" if resolved.raw_input_shape is not None else resolved.input_dtype,
        "contract": input_contract(resolved),
        # several named inputs: the clients send each one by its signature key
        "inputs": [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in resolved.inputs]
        if resolved.multi_input else [],
        "grpc_port": GRPC_PORT,
        "rest_port": REST_PORT,
        "py": {
            "model_name": python_literal(name),
            "signature": python_literal(SIGNATURE),
            "input_name": python_literal(resolved.input_name),
            "output_name": python_literal(resolved.output_name),
            "input_shape": python_literal(tuple(resolved.raw_input_shape or resolved.input_shape)),
            "input_dtype": python_literal("float32" if resolved.raw_input_shape is not None else resolved.input_dtype),
            "target": python_literal(f"localhost:{GRPC_PORT}"),
            "labels": python_literal(tuple(sorted(target.version_labels))),
            "inputs": python_literal({i.name: (tuple(i.shape), i.dtype) for i in resolved.inputs})
            if resolved.multi_input else "",
        },
        "labels": sorted(target.version_labels),
    }
    files[f"{t}/clients/predict_rest.sh"] = render_template("tf_serving/clients/predict_rest.sh.j2", **client_context)
    files[f"{t}/clients/predict_grpc.py"] = render_template("tf_serving/clients/predict_grpc.py.j2", **client_context)
    return files


# --- validation rules (run by compiler/validate.py) --------------------------------------------------

def _serving_targets(r: ResolvedSpec) -> list[tuple[int, TfServingTarget]]:
    return [(index, t) for index, t in enumerate(r.spec.targets) if isinstance(t, TfServingTarget)]


def versions_held(r: ResolvedSpec) -> list[Diagnostic]:
    """Every version a policy or a label names must be in the served bundle: TF Serving refuses a label of a
    version it cannot load at start-up, and the pod crash-loops."""
    out = []
    for index, target in _serving_targets(r):
        held = held_versions(r, target)
        if held is None:
            continue
        reported: set[int] = set()
        # Labels first: a version the (derived) policy lists only because a label names it is reported once.
        for path, version in sorted(named_versions(target).items(), key=lambda item: item[0][0] != "version_labels"):
            if version not in held and version not in reported:
                reported.add(version)
                out.append(r.diagnostic(("targets", index, *path),
                                        f"version {version} is not in the image, which holds only version "
                                        f"{r.spec.version}",
                                        "serve several versions from a model_store, or name only this version"))
    return out


def one_disruption_budget(r: ResolvedSpec) -> list[Diagnostic]:
    out = []
    for index, target in _serving_targets(r):
        kube = target.kubernetes
        if kube is not None and kube.min_available is not None and "max_unavailable" in kube.model_fields_set:
            out.append(r.diagnostic(("targets", index, "kubernetes", "max_unavailable"),
                                    "give min_available or max_unavailable, not both",
                                    "a PodDisruptionBudget takes one of them"))
    return out


RULES = (versions_held, one_disruption_budget)


def plan_saved_model_serving(context: PlanContext, resolved: ResolvedSpec,
                             target: TfServingTarget | KserveTarget) -> None:
    """warmup records (optional) → verify (the SavedModel, gated) → bundle (``models/<name>/<version>/``)
    → upload (with a model store). tf_serving and kserve serve the same bundle."""
    spec, t = resolved.spec, target.name
    # a SavedModel served as it is: its chosen signature, whose keys are read from it at run time
    as_is = bool(getattr(spec.model, "serve_as_is", False))
    signature = spec.model.signature if as_is else "serving_default"
    input_name, output_name = (None, None) if as_is else (resolved.input_name, resolved.output_name)
    inputs = [context.export]
    if getattr(target, "warmup", None) is not None:
        inputs.append(context.add(f"{t}.warmup", "warmup", WarmupParams(
            requests=target.warmup.requests, model_name=spec.name, signature=signature,
            input_name=input_name, raw_inputs=resolved.raw_input_shape is not None,
        ), [context.export, context.data], ["tf_serving_warmup_requests"], t))
    verify = context.add(f"{t}.verify", "verify", SavedModelVerifyParams(
        artifact="saved_model", gates=dump(target.gates), metric=context.metric,
        input_name=input_name, output_name=output_name, signature=signature,
        raw_inputs=resolved.raw_input_shape is not None,
    ), [context.export, context.evaluate, context.data], ["verify.json"], t)
    model_dir = f"{t}/models/{spec.name}/{spec.version}"
    bundle = context.add(f"{t}.bundle", "bundle", SavedModelBundleParams(
        artifact="saved_model", model_dir=model_dir, name=spec.name, version=spec.version,
    ), inputs + [verify], [model_dir], t)
    if target.model_store is not None:
        context.add(f"{t}.upload", "upload", upload_params(resolved, target, model_dir), [bundle], ["upload.json"], t)


def _batching_defaults(target: TfServingTarget) -> Any:
    """TF Serving's batching guide for online serving: one batch thread per core of the CPU limit, and a
    queue of as many batches as threads (bounded latency; overload is rejected, not queued without end)."""
    batching = target.batching
    assert batching is not None
    threads = batching.num_batch_threads
    if threads is None:
        cpu = target.kubernetes.resources.limits.cpu if target.kubernetes else "1"
        threads = max(1, math.ceil(quantity_value(cpu)))
    enqueued = batching.max_enqueued_batches if batching.max_enqueued_batches is not None else threads
    return batching.model_copy(update={"num_batch_threads": threads, "max_enqueued_batches": enqueued})


def tf_serving_defaults(spec: Spec, target: TfServingTarget) -> TfServingTarget:
    """The pinned serving version; batching per TF Serving's guide; with version labels and no explicit
    policy, exactly the labelled versions and this one are served (canary and rollback by labels); a
    PodDisruptionBudget that lets one replica go at a time."""
    update: dict[str, Any] = {}
    if target.serving_version is None:
        update["serving_version"] = SERVING_IMAGE["version"]
    if target.batching is not None:
        update["batching"] = _batching_defaults(target)
    if target.version_labels and "version_policy" not in target.model_fields_set:
        versions = sorted({*target.version_labels.values(), spec.version})
        update["version_policy"] = SpecificVersions(kind="specific", versions=versions)
    if target.kubernetes is not None and target.kubernetes.min_available is None \
            and target.kubernetes.max_unavailable is None:
        update["kubernetes"] = target.kubernetes.model_copy(update={"max_unavailable": 1})
    return target.model_copy(update=update)


TARGET = register(TargetKind("tf_serving", render=render_tf_serving, plan_steps=plan_saved_model_serving,
                             defaults=tf_serving_defaults))
