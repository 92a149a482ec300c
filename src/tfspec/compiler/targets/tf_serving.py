"""tf_serving target: TF Serving configs, the serving Dockerfile, Kubernetes manifests and client examples.

Files (under ``<target>/``):

* ``config/models.config``, ``config/batching_parameters.txt``, ``config/monitoring.config``: TF Serving
  text protos (ModelServerConfig, BatchingParameters, MonitoringConfig).
* ``Dockerfile``: the pinned ``tensorflow/serving`` image (``-gpu`` with GPUs), configs and SavedModel
  copied in, non-root, the server flags the configs need. Build context: this folder, after ``tfspec run``
  placed the SavedModel under ``models/<name>/<version>/``. With a ``model_store`` the image carries only
  the configs and the server reads the versions from object storage.
* ``kubernetes/``: a kustomize base (ConfigMap, Deployment, Service, PodDisruptionBudget, HPA); with version
  labels one more ConfigMap, Deployment and Service per labelled version other than the default one (TF
  Serving answers a request without a label with the highest version it loaded, so the default version
  gets a server of its own); with an ``s3://`` store the containers that copy it (``store_sync``).
* ``clients/``: ``predict_rest.sh`` + ``request.json`` (curl) and ``predict_grpc.py`` (PredictRequest), both
  taking an optional version label (``stable``, ``canary``).

The image is ``<repository>:<version>-<content hash>``: the hash covers what the image holds (the plan's
fingerprint of the bundle step, i.e. the SavedModel and warmup records, the configs, the base image and
the server flags), so a retrain of the same version gets a new tag; a repository pinned by digest is used
as given.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any

from tfspec.plan import SavedModelBundleParams, SavedModelVerifyParams, WarmupParams
from tfspec.spec.document import Spec
from tfspec.base.errors import Diagnostic
from tfspec.spec.loader import KeyPath
from tfspec.spec.targets import KserveTarget, ModelStore, SpecificVersions, TfServingTarget

from ..kube_names import LABEL_VALUE, OBJECT_NAME, SERVICE_NAME, GeneratedName, letter_first
from ..quantities import quantity_value
from ..render import render_template
from ..resolve import ResolvedSpec
from tfspec.base.versions import GRPC_HEALTH_SERVING_VERSION, SERVING_IMAGE, serving_image
from . import kubernetes as k8s
from . import store_sync
from .common import (PULL_POLICY, base_context, content_tag, dockerfile_quote, image_reference, image_repository,
                     object_name, qualified_image, python_literal, without_header)
from .model_store import (earlier_secret_spelling, store_credentials_name_a_secret, store_endpoint_is_s3,
                          upload_params)
from ..plan_sections import gates_params
from ..released import plan_comparison
from .registry import MEASURED_METRICS, ImageSource, PlanContext, TargetKind, Workload, register

__all__ = ["render_tf_serving", "GRPC_PORT", "REST_PORT", "CONFIG_DIR", "MODEL_ROOT", "METRICS_PATH", "SERVING_UID",
           "server_flags", "thread_flags", "models_config_context", "held_versions", "named_versions", "RULES",
           "GRACE_MARGIN_SECONDS", "plan_saved_model_serving", "Track", "tracks", "served_base_path",
           "required_versions", "serving_workload", "client_inputs"]

GRPC_PORT = 8500
REST_PORT = 8501
CONFIG_DIR = "/etc/tfserving"
MODEL_ROOT = "/models"
METRICS_PATH = "/monitoring/prometheus/metrics"
SERVING_BINARY = "/usr/bin/tensorflow_model_server"
# The tensorflow/serving image has no non-root user; a fixed high UID keeps clear of host users.
SERVING_UID = 65532

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
    """``tensorflow_model_server`` flags: ports, the model config, and what each config file needs.

    The standard gRPC health service answers the liveness probe on the gRPC port, away from the REST
    thread pool that predictions fill; a ``gs://`` store is listed every ``poll_seconds`` (TF Serving's
    default is every second).
    """
    flags = [
        f"--port={GRPC_PORT}",
        f"--rest_api_port={REST_PORT}",
        f"--model_config_file={CONFIG_DIR}/{MODELS_CONFIG}",
        "--enable_grpc_healthcheck_service=true",
    ]
    store = target.model_store
    if store is not None and not store_sync.needs_sync(store):
        flags.append(f"--file_system_poll_wait_seconds={store.poll_seconds}")
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


@dataclasses.dataclass(frozen=True)
class Track:
    """One Deployment of a tf_serving target and what its server loads.

    TF Serving answers a request without a version or label with the highest version it has loaded
    (``ServerCore::ServableRequestFromModelSpec`` → ``ServableRequest::Latest``), so a server loading a
    stable and a newer canary version would send every unlabelled request to the canary. Each labelled
    version therefore gets its own server: the default track loads the ``default_label``'s version and
    answers unlabelled requests; every other version is served by ``<object>-<label>``.
    """

    suffix: str
    """``""`` for the default Deployment, ``-<label>`` for the others (object names)."""
    versions: tuple[int, ...] | None
    """The versions this server loads (``specific``); None: the target's ``version_policy`` as given."""
    labels: tuple[tuple[str, int], ...]
    """The version labels this server knows."""


def tracks(resolved: ResolvedSpec, target: TfServingTarget) -> list[Track]:
    """The default track first, then one per labelled version other than the default one (by version)."""
    labels = target.version_labels
    if not labels:
        return [Track("", None, ())]
    default = labels.get(target.default_label, resolved.spec.version)
    by_version: dict[int, list[str]] = {}
    for label, version in sorted(labels.items()):
        by_version.setdefault(version, []).append(label)
    out = [Track("", (default,), tuple((label, default) for label in by_version.pop(default, [])))]
    for version, names in sorted(by_version.items()):
        out.append(Track(f"-{names[0]}", (version,), tuple((label, version) for label in names)))
    return out


def served_base_path(resolved: ResolvedSpec, target: TfServingTarget) -> str:
    """Where TF Serving finds the versions: the image's folder, the ``gs://`` store itself, or the local
    folder an ``s3://`` store is copied into (the stock image has no S3 file system)."""
    store = target.model_store
    if store is not None and not store_sync.needs_sync(store):
        return store.base_path
    return f"{MODEL_ROOT}/{resolved.spec.name}"


def models_config_context(resolved: ResolvedSpec, target: TfServingTarget, track: Track | None = None) -> dict[str, Any]:
    track = track or tracks(resolved, target)[0]
    policy = target.version_policy
    specific = track.versions is not None
    return {
        "model_name": resolved.spec.name,
        "base_path": served_base_path(resolved, target),
        "policy_kind": "specific" if specific else policy.kind,
        "num_versions": getattr(policy, "num_versions", 1),
        "versions": sorted(track.versions) if specific else sorted(getattr(policy, "versions", [])),
        "version_labels": list(track.labels),
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


def client_inputs(resolved: ResolvedSpec) -> list[dict[str, Any]]:
    """What the clients send, one entry per signature input key: its name, the shape of one example and
    its dtype — the model's inputs, a raw example with ``in_model`` preprocessing, or for a SavedModel
    served as it is its own signature's input key and dtype (``served_signature`` put them in ``resolved``)."""
    if resolved.raw_input_shape is not None:  # preprocessing in the model: a raw float32 example
        return [{"name": resolved.input_name, "shape": list(resolved.raw_input_shape), "dtype": "float32"}]
    return [{"name": i.name, "shape": list(i.shape), "dtype": i.dtype} for i in resolved.inputs]


def _request_json(resolved: ResolvedSpec) -> str:
    instance = {i["name"]: _zeros(tuple(i["shape"]), i["dtype"]) for i in client_inputs(resolved)}
    body = {"signature_name": resolved.signature_name, "instances": [instance]}
    return json.dumps(body, separators=(", ", ": ")) + "\n"


def _model_status_probe(resolved: ResolvedSpec, period: int, failures: int) -> dict[str, Any]:
    """``GET /v1/models/<name>``: the model is loaded and available (startup and readiness)."""
    return {"httpGet": {"path": f"/v1/models/{resolved.spec.name}", "port": "http"},
            "periodSeconds": period, "timeoutSeconds": 5, "failureThreshold": failures}


def _liveness_probe() -> dict[str, Any]:
    """The standard gRPC health service on the gRPC port (``--enable_grpc_healthcheck_service``): it runs on
    the gRPC server, not in the REST thread pool (``--rest_api_num_threads``) that predictions can fill, so
    a saturated replica is not killed; a hung server still fails it. A gRPC probe names a port number."""
    return {"grpc": {"port": GRPC_PORT}, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 3}


def store_environment(store: ModelStore | None) -> list[dict[str, Any]]:
    """Environment of a TF Serving container reading ``store`` itself (``gs://``): where the mounted
    service-account key is (the Secret is mounted as files, never copied into env). An ``s3://`` store is
    read by the sync containers instead (``store_sync``)."""
    if store is None or store_sync.needs_sync(store) or not store.credentials.kubernetes_secret:
        return []
    return [{"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": f"{STORE_CREDENTIALS_DIR}/{STORE_CREDENTIALS_KEYS['gs']}"}]


def rolling_update(target: TfServingTarget) -> dict[str, int]:
    """``maxSurge``/``maxUnavailable``: 1/0 on CPU (full capacity while rolling), 0/1 with GPUs (a surge pod
    would need a spare GPU and wait Pending on a full node pool, blocking the rollout)."""
    assert target.kubernetes is not None
    chosen = target.kubernetes.rolling_update
    gpu = target.gpus > 0
    surge = chosen.max_surge if chosen.max_surge is not None else (0 if gpu else 1)
    unavailable = chosen.max_unavailable if chosen.max_unavailable is not None else (1 if gpu else 0)
    return {"maxSurge": surge, "maxUnavailable": unavailable}


def _pod_volumes(target: TfServingTarget, config_map: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                                   list[dict[str, Any]]]:
    """(volumes, the server's mounts, the sync containers' mounts) of one Deployment."""
    store = target.model_store
    sync = store_sync.needs_sync(store)
    volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": config_map}},
                                     {"name": "tmp", "emptyDir": {}}]
    server = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}, {"name": "tmp", "mountPath": "/tmp"}]
    syncing = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}, {"name": "tmp", "mountPath": "/tmp"}]
    if sync:
        volumes.append({"name": "models", "emptyDir": {}})
        server.append({"name": "models", "mountPath": MODEL_ROOT, "readOnly": True})
        syncing.append({"name": "models", "mountPath": MODEL_ROOT})
    if store is not None and store.credentials.kubernetes_secret:
        volumes.append({"name": "store-credentials", "secret": {"secretName": store.credentials.kubernetes_secret}})
        mount = {"name": "store-credentials", "mountPath": STORE_CREDENTIALS_DIR, "readOnly": True}
        (syncing if sync else server).append(mount)
    return volumes, server, syncing


def _kubernetes_context(resolved: ResolvedSpec, target: TfServingTarget, track: Track, configs: dict[str, str],
                        image: str, header: list[str], script: str | None) -> dict[str, Any]:
    """Everything the manifests of one track (Deployment, its ConfigMap and Service) lay out."""
    kube = target.kubernetes
    assert kube is not None
    name = object_name(resolved, target) + track.suffix
    default = track.suffix == ""
    # The data only: the header names the spec's sha256, and an edit elsewhere in the spec (epochs) must
    # not roll every serving pod.
    data = {filename: without_header(text, header) for filename, text in configs.items()}
    if script is not None:
        data[store_sync.SCRIPT] = without_header(script, header)
    config_hash = hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()[:10]
    config_map = f"{name}-config-{config_hash}"
    pod_annotations: dict[str, str] = {}
    if target.monitoring:
        pod_annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(REST_PORT),
                           "prometheus.io/path": METRICS_PATH}
    selector = k8s.selector_labels(resolved, name, "serving")
    store = target.model_store
    volumes, server_mounts, sync_mounts = _pod_volumes(target, config_map)
    container: dict[str, Any] = {
        "image": image,
        "args": thread_flags(kube.resources.limits.cpu),
        # The root filesystem is read-only: a home that can be written (TensorFlow and the AWS SDK look there).
        "env": [{"name": "HOME", "value": "/tmp"}, *store_environment(store)],
        "resources": k8s.resources(kube.resources, target.gpus),
        "securityContext": k8s.container_security_context(),
        "startupProbe": _model_status_probe(resolved, period=5, failures=60),
        "readinessProbe": _model_status_probe(resolved, period=10, failures=3),
        "livenessProbe": _liveness_probe(),
        # TF Serving exits on SIGTERM at once: keep serving while the endpoints controller and the
        # proxies stop routing to this pod (the image is Ubuntu-based and has /bin/sleep).
        "lifecycle": {"preStop": {"exec": {"command": ["/bin/sleep", str(kube.drain_seconds)]}}},
        "volumeMounts": server_mounts,
    }
    init_containers: list[dict[str, Any]] = []
    sidecars: list[dict[str, Any]] = []
    if store is not None and store_sync.needs_sync(store):
        credentials = f"{STORE_CREDENTIALS_DIR}/{STORE_CREDENTIALS_KEYS['s3']}" if store.credentials.kubernetes_secret else None
        initial, keeping = store_sync.sync_containers(
            store, f"{MODEL_ROOT}/{resolved.spec.name}", list(track.versions) if track.versions else None,
            CONFIG_DIR, sync_mounts, credentials)
        init_containers, sidecars = [initial], [keeping]
    workload = serving_workload(target)
    assert workload is not None
    replicas = workload.replicas if default else kube.canary_replicas
    autoscale = kube.autoscale if default else None
    disruption = ({"minAvailable": kube.min_available} if kube.min_available is not None
                  else {"maxUnavailable": kube.max_unavailable})
    suffix = track.suffix
    resources_list = [f"configmap{suffix}.yaml", f"deployment{suffix}.yaml", f"service{suffix}.yaml"]
    # One replica gets no PodDisruptionBudget: it could only block node drains or allow everything.
    if default and replicas > 1:
        resources_list.append("poddisruptionbudget.yaml")
    if autoscale:
        resources_list.append("horizontalpodautoscaler.yaml")
    return {
        "object_name": name,
        "namespace": kube.namespace,
        "labels": k8s.labels(resolved, name, "serving"),
        "selector": selector,
        "annotations": k8s.annotations(resolved),
        "pod_annotations": pod_annotations,
        "replicas": None if autoscale else replicas,
        "autoscale": autoscale.model_dump() if autoscale else None,
        "disruption": disruption,
        "strategy": rolling_update(target),
        "service_type": kube.service_type,
        "config_map": config_map,
        "config_map_annotations": k8s.KEEP_ON_SYNC,
        "configs": sorted({**configs, **({store_sync.SCRIPT: script} if script is not None else {})}.items()),
        "container": container,
        "init_containers": init_containers,
        "sidecars": sidecars,
        "volumes": volumes,
        "service_account": kube.service_account,
        "image_pull_secrets": [{"name": secret} for secret in kube.image_pull_secrets],
        "pull_policy": PULL_POLICY,
        "termination_grace_seconds": kube.drain_seconds + GRACE_MARGIN_SECONDS,
        "pod_security_context": k8s.pod_security_context(SERVING_UID),
        "node_selector": k8s.node_selector(kube.node_selector, target.gpus, kube.gpu_feature_discovery),
        "tolerations": k8s.tolerations(kube.tolerations, target.gpus),
        "topology_spread": k8s.topology_spread(kube.topology_spread, selector),
        "grpc_port": GRPC_PORT,
        "rest_port": REST_PORT,
        "config_dir": CONFIG_DIR,
        "resources_list": resources_list,
        "track_versions": list(track.versions or []),
        "track_labels": [label for label, _ in track.labels],
    }


def render_tf_serving(resolved: ResolvedSpec, target: TfServingTarget, served: str | None = None) -> dict[str, str]:
    t = target.name
    name = resolved.spec.name
    context = base_context(resolved, target)
    files: dict[str, str] = {}

    all_tracks = tracks(resolved, target)

    def track_configs(track: Track) -> dict[str, str]:
        configs = {MODELS_CONFIG: render_template("tf_serving/models.config.j2", **context,
                                                  **models_config_context(resolved, target, track))}
        if batching is not None:
            configs[BATCHING_FILE] = render_template("tf_serving/batching_parameters.txt.j2", **context, **batching)
        if target.monitoring:
            configs[MONITORING_FILE] = render_template("tf_serving/monitoring.config.j2", **context,
                                                       metrics_path=METRICS_PATH)
        return configs

    batching = _batching_context(target)
    configs = track_configs(all_tracks[0])  # the image holds the default track's configuration
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
        store_sync=store_sync.needs_sync(target.model_store),
        uid=SERVING_UID,
        ports=[GRPC_PORT, REST_PORT],
        entrypoint=[json.dumps(word) for word in entrypoint],
        image_tag=image,
        gpus=target.gpus,
    )

    if target.kubernetes is not None:
        script = store_sync.sync_script(context) if store_sync.needs_sync(target.model_store) else None
        listed: list[str] = []
        for track in all_tracks:
            kube_context = _kubernetes_context(resolved, target, track, track_configs(track), image,
                                               context["header"], script)
            for resource in kube_context["resources_list"]:
                template = resource.removesuffix(".yaml").removesuffix(track.suffix) + ".yaml"
                files[f"{t}/kubernetes/{resource}"] = render_template(f"tf_serving/kubernetes/{template}.j2",
                                                                      **{**context, **kube_context})
            listed += kube_context["resources_list"]
        files[f"{t}/kubernetes/kustomization.yaml"] = render_template(
            "tf_serving/kubernetes/kustomization.yaml.j2", **context, namespace=target.kubernetes.namespace,
            resources_list=listed)

    files[f"{t}/clients/request.json"] = _request_json(resolved)
    inputs = client_inputs(resolved)
    served = resolved.served
    client_context = {
        **context,
        "model_name": name,
        "signature": resolved.signature_name,
        "output_name": resolved.output_name,
        # a SavedModel served as it is may have several outputs: REST returns them all, gRPC filters
        "other_outputs": [o.key for o in served.outputs if o.key != resolved.output_name] if served else [],
        "contract": input_contract(resolved),
        "signature_inputs": inputs,
        "grpc_port": GRPC_PORT,
        "rest_port": REST_PORT,
        "py": {
            "model_name": python_literal(name),
            "signature": python_literal(resolved.signature_name),
            "output_name": python_literal(resolved.output_name),
            "target": python_literal(f"localhost:{GRPC_PORT}"),
            "labels": python_literal(tuple(sorted(target.version_labels))),
            "inputs": python_literal({i["name"]: (tuple(i["shape"]), i["dtype"]) for i in inputs}),
        },
        "labels": sorted(target.version_labels),
    }
    files[f"{t}/clients/predict_rest.sh"] = render_template("tf_serving/clients/predict_rest.sh.j2", **client_context)
    files[f"{t}/clients/predict_grpc.py"] = render_template("tf_serving/clients/predict_grpc.py.j2", **client_context)
    return files


# --- validation rules (the kind's ``rules``, run by compiler/validate.py for each tf_serving target) -------

def batch_sizes_fit(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[Diagnostic]:
    if target.batching is None or not target.batching.allowed_batch_sizes:
        return []
    sizes = target.batching.allowed_batch_sizes
    path = ("targets", index, "batching", "allowed_batch_sizes")
    out = []
    if sizes != sorted(set(sizes)):
        out.append(r.diagnostic(path, "allowed_batch_sizes must be strictly increasing"))
    if sizes[-1] != target.batching.max_batch_size:
        out.append(r.diagnostic(path, f"the last allowed batch size ({sizes[-1]}) must equal max_batch_size "
                                f"({target.batching.max_batch_size})", "TF Serving rejects the file otherwise"))
    return out


def versions_loaded(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[Diagnostic]:
    """The version this spec builds is loaded, and every label names a loaded version."""
    out = []
    policy = target.version_policy
    loaded: set[int] | None = None
    if target.version_labels and policy.kind == "specific" and r.spec.version not in policy.versions:
        # Labels derive the policy (one server per labelled version): the built version needs a label.
        out.append(r.diagnostic(("targets", index, "version_labels"),
                                f"version {r.spec.version}, the one this spec builds, has no label and is not "
                                f"the {target.default_label!r} label's: no Deployment would serve it",
                                f"label it (e.g. canary: {r.spec.version}), or point {target.default_label} at it"))
        loaded = set(policy.versions)
    elif policy.kind == "specific":
        loaded = set(policy.versions)
        if r.spec.version not in loaded:
            out.append(r.diagnostic(("targets", index, "version_policy", "versions"),
                                    f"the policy does not load version {r.spec.version}, the one this spec builds",
                                    f"add {r.spec.version} to versions"))
    elif policy.kind == "latest" and policy.num_versions == 1:
        loaded = {r.spec.version}
    for label, version in target.version_labels.items():
        if loaded is not None and version not in loaded and not target.allow_unavailable_version_labels:
            out.append(r.diagnostic(("targets", index, "version_labels", label),
                                    f"label {label!r} points at version {version}, which the version policy does not load",
                                    "TF Serving only labels loaded versions: change the policy or the label"))
    if target.serving_version and ("gpu" in target.serving_version or "devel" in target.serving_version):
        out.append(r.diagnostic(("targets", index, "serving_version"),
                                f"give the plain version, not {target.serving_version!r}",
                                "the -gpu image is chosen from gpus > 0"))
    return out


def versions_held(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[Diagnostic]:
    """Every version a policy or a label names must be in the served bundle: TF Serving refuses a label of a
    version it cannot load at start-up, and the pod crash-loops."""
    held = held_versions(r, target)
    if held is None:
        return []
    out = []
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


def replicas_fit(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[Diagnostic]:
    """An explicit replica count inside the autoscaling range; a PodDisruptionBudget that allows an eviction."""
    kube, workload = target.kubernetes, serving_workload(target)
    if kube is None or workload is None:
        return []
    path: KeyPath = ("targets", index, "kubernetes")
    out = []
    if kube.autoscale is not None and "replicas" in kube.model_fields_set and \
            not kube.autoscale.min <= kube.replicas <= kube.autoscale.max:
        out.append(r.diagnostic(path + ("replicas",), f"replicas ({kube.replicas}) is outside the autoscaling range "
                                f"{kube.autoscale.min}..{kube.autoscale.max}",
                                "the HorizontalPodAutoscaler owns the replica count: drop replicas or widen the range"))
    if kube.min_available is not None and workload.replicas > 1 and kube.min_available >= workload.replicas:
        out.append(r.diagnostic(path + ("min_available",), f"min_available ({kube.min_available}) must be below the "
                                f"replica count ({workload.replicas})",
                                "a PodDisruptionBudget that allows no eviction blocks every node drain"))
    return out


def one_disruption_budget(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[Diagnostic]:
    kube = target.kubernetes
    if kube is None or kube.min_available is None or "max_unavailable" not in kube.model_fields_set:
        return []
    return [r.diagnostic(("targets", index, "kubernetes", "max_unavailable"),
                         "give min_available or max_unavailable, not both", "a PodDisruptionBudget takes one of them")]


def _derived_versions(spec_version: int, target: TfServingTarget) -> list[int]:
    """The versions the servers of a labelled target load together: every labelled one and the default."""
    default = target.version_labels.get(target.default_label, spec_version)
    return sorted({*target.version_labels.values(), default})


def labels_choose_versions(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[Diagnostic]:
    """With labels every labelled version gets its own server (``tracks``): a policy of its own would
    contradict them."""
    if not target.version_labels:
        return []
    derived = SpecificVersions(kind="specific", versions=_derived_versions(r.spec.version, target))
    if target.version_policy == derived:
        return []
    return [r.diagnostic(("targets", index, "version_policy"),
                         "version_labels choose the versions served (one Deployment per labelled "
                         "version, the default_label's answering requests without a label)",
                         "drop version_policy, or drop version_labels")]


def track_names_fit(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[Diagnostic]:
    """``<spec>-<target>-<label>`` names a Deployment and a Service: a Service name is a DNS label (63)."""
    if target.kubernetes is None:
        return []
    out = []
    for track in tracks(r, target)[1:]:
        name = object_name(r, target) + track.suffix
        if len(name) > 63:
            label = track.suffix[1:]
            out.append(r.diagnostic(("targets", index, "version_labels", label),
                                    f"the Service of label {label!r}, {name!r}, is longer than 63 characters",
                                    "use a shorter label or target name"))
    return out


def no_cpu_autoscaling_of_gpu_replicas(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[Diagnostic]:
    """The HorizontalPodAutoscaler scales on CPU utilisation; a GPU replica's work runs on the GPU, so its
    CPU stays low while requests queue (no scale-out) and spikes on input decoding (needless scale-out)."""
    kube = target.kubernetes
    if kube is None or kube.autoscale is None or target.gpus == 0:
        return []
    return [r.diagnostic(("targets", index, "kubernetes", "autoscale"),
                         "autoscaling GPU replicas on CPU utilisation does not follow their load",
                         "set kubernetes.replicas; scale GPU serving on a serving metric (request "
                         "latency or batch queue from the Prometheus metrics) with KEDA or a "
                         "custom-metrics HPA of your own")]


def rollout_can_progress(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[Diagnostic]:
    if target.kubernetes is None or rolling_update(target) != {"maxSurge": 0, "maxUnavailable": 0}:
        return []
    return [r.diagnostic(("targets", index, "kubernetes", "rolling_update"),
                         "max_surge and max_unavailable are both 0: a rollout could never replace a pod",
                         "allow one surge pod (needs spare capacity) or one unavailable pod")]


def _release(tag: str) -> tuple[int, ...] | None:
    parts = tag.split("-")[0].split(".")
    return tuple(int(p) for p in parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else None


def serving_version_has_grpc_health(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[Diagnostic]:
    """The liveness probe uses TF Serving's gRPC health service (``--enable_grpc_healthcheck_service``,
    2.15 and newer; an older server exits on the unknown flag)."""
    release = _release(target.serving_version or "")
    if target.base_image is not None or release is None or release >= GRPC_HEALTH_SERVING_VERSION:
        return []
    need = ".".join(map(str, GRPC_HEALTH_SERVING_VERSION))
    return [r.diagnostic(("targets", index, "serving_version"),
                         f"TF Serving {target.serving_version} has no gRPC health service (--enable_grpc_"
                         f"healthcheck_service, {need} and newer), which the liveness probe uses",
                         f"use serving_version {need} or newer")]


def image_without_registry(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[Diagnostic]:
    """A build warning: manifests naming a built image with no registry make every node pull
    ``docker.io/library/<name>``, which is not the image tfspec built."""
    if target.kubernetes is None:
        return []
    repository = image_repository(r, target, target.kubernetes.image)
    if "/" in repository.split("@")[0]:
        return []
    return [r.diagnostic(("targets", index, "kubernetes"),
                         f"warning: the image {repository!r} names no registry: a cluster pulls "
                         f"docker.io/library/{repository.split('@')[0]}, not the image built here",
                         "set the top-level registry (e.g. registry: ${REGISTRY}) or kubernetes.image")]


RULES = (batch_sizes_fit, versions_loaded, versions_held, replicas_fit, one_disruption_budget, labels_choose_versions,
         track_names_fit, no_cpu_autoscaling_of_gpu_replicas, rollout_can_progress, serving_version_has_grpc_health,
         store_endpoint_is_s3, store_credentials_name_a_secret)


def plan_saved_model_serving(context: PlanContext, resolved: ResolvedSpec,
                             target: TfServingTarget | KserveTarget) -> None:
    """warmup records (optional) → verify (the SavedModel, gated) → compare (with a released model) → bundle
    (``models/<name>/<version>/``); the upload comes after every target's gates (``plan_store_upload``).
    tf_serving and kserve serve the same bundle."""
    spec, t = resolved.spec, target.name
    # a SavedModel served as it is: its chosen signature, whose input key is read from it at run time; the
    # output verified is the one the compiler chose from it (the tflite verify reads the same)
    as_is = bool(getattr(spec.model, "serve_as_is", False))
    signature = resolved.signature_name
    input_name, output_name = (None if as_is else resolved.input_name), resolved.output_name
    export = context.export
    assert export is not None  # the kind reads_saved_model: the plan has an export step
    inputs = [export]
    if getattr(target, "warmup", None) is not None:
        inputs.append(context.add(f"{t}.warmup", "warmup", WarmupParams(
            requests=target.warmup.requests, model_name=spec.name, signature=signature,
            input_name=input_name, raw_inputs=resolved.raw_input_shape is not None,
        ), [export, context.data], ["tf_serving_warmup_requests"], t))
    raw = resolved.raw_input_shape is not None
    verify = context.add(f"{t}.verify", "verify", SavedModelVerifyParams(
        artifact="saved_model", gates=gates_params(target.gates), metric=context.metric,
        input_name=input_name, output_name=output_name, signature=signature, raw_inputs=raw,
    ), [export, context.evaluate, context.data], ["verify.json"], t)
    compare = plan_comparison(context.add, context.released.get(t), target, export, context.data,
                              context.metric, raw_inputs=raw, filename=None, xnnpack=True, output_key=None,
                              input_name=input_name, output_name=output_name, signature=signature)
    context.gate_steps.extend(s for s in (verify, compare) if s is not None)
    model_dir = f"{t}/models/{spec.name}/{spec.version}"
    context.add(f"{t}.bundle", "bundle", SavedModelBundleParams(
        artifact="saved_model", model_dir=model_dir, name=spec.name, version=spec.version,
    ), inputs + [verify], [model_dir], t)


def plan_store_upload(context: PlanContext, resolved: ResolvedSpec, target: TfServingTarget | KserveTarget,
                      required_versions: list[int], pinned: bool) -> None:
    """upload (with a model store): the bundle, once every gate of the run passed (``context.gate_steps``);
    ``required_versions`` must be in the store first; ``pinned``: each version in a folder of its own, see
    :attr:`tfspec.plan.UploadParams.pinned`."""
    if target.model_store is None:
        return
    t, spec = target.name, resolved.spec
    model_dir = f"{t}/models/{spec.name}/{spec.version}"
    context.add(f"{t}.upload", "upload", upload_params(resolved, target, model_dir, required_versions, pinned),
                [f"{t}.bundle", *context.gate_steps], ["upload.json"], t)


def required_versions(resolved: ResolvedSpec, target: TfServingTarget) -> list[int]:
    """Versions the store must hold once this spec's version is uploaded: the policy's specific versions,
    the labels' versions (unless labels may name unavailable versions) and this spec's version, sorted."""
    versions = {resolved.spec.version}
    labelled = set(target.version_labels.values())
    if target.version_policy.kind == "specific":
        versions.update(target.version_policy.versions)
    versions.update(labelled)
    if target.allow_unavailable_version_labels:
        # The server may label a version before it is there: labelled versions are not required.
        versions -= labelled - {resolved.spec.version}
    return sorted(versions)


def upload_tf_serving(context: PlanContext, resolved: ResolvedSpec, target: TfServingTarget) -> None:
    """The upload; its store must first hold every version the policy and the labels name."""
    plan_store_upload(context, resolved, target, required_versions(resolved, target), pinned=False)


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
        update["version_policy"] = SpecificVersions(kind="specific",
                                                    versions=_derived_versions(spec.version, target))
    if target.kubernetes is not None and target.kubernetes.min_available is None \
            and target.kubernetes.max_unavailable is None:
        update["kubernetes"] = target.kubernetes.model_copy(update={"max_unavailable": 1})
    return target.model_copy(update=update)


def serving_names(r: ResolvedSpec, index: int, target: TfServingTarget) -> list[GeneratedName]:
    """The names of the Kubernetes manifests (none without ``kubernetes``), per track: Deployment, Service,
    HPA and PodDisruptionBudget ``<name>-<target>[-<label>]``, the ConfigMap ``...-config-<hash>``."""
    if target.kubernetes is None:
        return []
    at, hint = ("targets", index, "name"), "shorten the spec name or the target name"
    out: list[GeneratedName] = []
    for track in tracks(r, target):
        name = object_name(r, target) + track.suffix
        out += [GeneratedName(name, LABEL_VALUE, "app.kubernetes.io/instance label value", at, hint),
                GeneratedName(name, SERVICE_NAME, "Service name", *letter_first(r, at, hint)),
                GeneratedName(f"{name}-config-{'0' * 10}", OBJECT_NAME, "ConfigMap name", at, hint,
                              f"{name}-config-<hash>")]
    return out


def serving_workload(target: TfServingTarget) -> Workload | None:
    """The default Deployment's pods (each labelled version's own Deployment runs ``canary_replicas``);
    none without ``kubernetes``."""
    kube = target.kubernetes
    if kube is None:
        return None
    low, high = (kube.autoscale.min, kube.autoscale.max) if kube.autoscale else (kube.replicas, kube.replicas)
    return Workload(("kubernetes",), kube.resources, tuple(kube.tolerations), target.gpus, low, high)


def serving_image_source(target: TfServingTarget) -> ImageSource:
    """The serving image: TF Serving with the configs, and the SavedModel unless a model store holds it."""
    return ImageSource(("kubernetes", "image"), target.kubernetes.image if target.kubernetes else None,
                       saved_model=target.model_store is None)


TARGET = register(TargetKind("tf_serving", render=render_tf_serving, rules=RULES, plan_steps=plan_saved_model_serving,
                             defaults=tf_serving_defaults, warnings=(image_without_registry, earlier_secret_spelling),
                             names=serving_names, metrics=MEASURED_METRICS, workload=serving_workload,
                             image=serving_image_source, release_steps=upload_tf_serving, reads_saved_model=True))
