"""The ``targets`` section: where the model goes (mobile TFLite, TF Serving, a GPU training cluster)."""

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from .released import Released, ReleasedGates
from .base import (
    MAX_INT, DnsLabel, EndpointUrlWithPath, FiniteFloat, KubeQuantity, NonNegativeFloat, PositiveFloat, PositiveInt, StrictBool, StrictInt,
    StrictModel,
)
from .credentials import Credentials

__all__ = [
    "Gates",
    "TfliteGates",
    "Accelerator",
    "NoQuantization",
    "DynamicRangeQuantization",
    "Float16Quantization",
    "Int8Quantization",
    "Int16x8Quantization",
    "TfliteQuantization",
    "AssetPack",
    "Android",
    "TfliteTarget",
    "Batching",
    "Warmup",
    "LatestVersions",
    "AllVersions",
    "SpecificVersions",
    "VersionPolicy",
    "Autoscale",
    "KserveAutoscale",
    "RollingUpdate",
    "ResourceAmounts",
    "Resources",
    "Toleration",
    "Kubernetes",
    "TopologySpread",
    "ModelStore",
    "TfServingTarget",
    "KserveTarget",
    "Storage",
    "Queue",
    "GpuClusterTarget",
    "Target",
    "TARGET_KINDS",
]

LabelKey = Annotated[str, StringConstraints(pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")]
LabelValue = Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]
ImageRepository = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")]
ImageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
_REPOSITORY = r"[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
# A repository, optionally pinned by digest (``registry.example.com/ml/digits-serving@sha256:<64 hex>``).
ImageReference = Annotated[str, StringConstraints(pattern=rf"^{_REPOSITORY}(@sha256:[0-9a-f]{{64}})?$")]
# A base image: repository with a tag, a digest, or both (``tensorflow/serving:2.21.0@sha256:<64 hex>``).
BaseImage = Annotated[str, StringConstraints(
    pattern=rf"^{_REPOSITORY}(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(@sha256:[0-9a-f]{{64}})?$")]
# An object-storage folder: ``s3://bucket/prefix`` or ``gs://bucket/prefix``.
ObjectStoragePath = Annotated[str, StringConstraints(
    pattern=r"^(s3|gs)://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/(?!\.+(/|$))[A-Za-z0-9_.=-]+)*$")]
Percentage = Annotated[str, StringConstraints(pattern=r"^(100|[1-9]?[0-9])%$")]


class Gates(StrictModel):
    """Quality gates checked by ``tfspec run`` on the test split; a miss fails the run (exit 1).

    The quality metric is ``accuracy`` for classifiers and ``mae`` (mean absolute error) for regression
    losses. Drops and increases are measured from the *trained* Keras model, before any compression
    stage, so what compression and conversion cost together counts against the gate.
    """

    max_accuracy_drop: Annotated[FiniteFloat, Field(ge=0.0, le=1.0)] | None = None
    """Largest allowed accuracy drop: trained Keras model's test accuracy − the artifact's (0.01 = one point).
    Classifiers only."""
    min_accuracy: Annotated[FiniteFloat, Field(ge=0.0, le=1.0)] | None = None
    """Smallest allowed test accuracy of the artifact. Classifiers only."""
    max_error_increase: NonNegativeFloat | None = None
    """Largest allowed error increase: the artifact's test mae − the trained Keras model's, in the label's
    units. Regression only."""
    max_error: NonNegativeFloat | None = None
    """Largest allowed test mae of the artifact, in the label's units. Regression only."""
    max_size_kb: PositiveFloat | None = None
    """Largest allowed artifact size in KiB (the ``.tflite`` file; the SavedModel's files but ``assets.extra/``:
    warm-up records and tfspec's model info)."""
    max_latency_ms: PositiveFloat | None = None
    """Largest allowed p95 latency of one example, in milliseconds, on this machine's CPU (one thread)."""
    vs_released: ReleasedGates | None = None
    """Gates against the target's ``released`` model (the one serving now), both measured on the current test
    split: e.g. ``{max_accuracy_drop: 0, max_latency_growth_percent: 20}``."""


class TfliteGates(Gates):
    """Gates of a tflite target: the quality gates above and the accelerator checks of the converted model."""

    gpu_delegable: StrictBool = False
    """Fail the run when any op of the ``.tflite`` model would fall back from the GPU delegate to the CPU
    (the ops are named in the message and listed in the report)."""


Accelerator = Literal["gpu", "npu", "cpu"]
"""Where the Android loader runs the model: ``gpu`` (LiteRT's GPU delegate, on devices its compatibility
list accepts), ``npu`` (the Android Neural Networks API delegate, API 28-34: NNAPI is deprecated from
Android 15) or ``cpu`` (LiteRT's default XNNPACK kernels)."""


class NoQuantization(StrictModel):
    """float32 model, no post-training quantization."""

    kind: Literal["none"]
    """Quantization mode."""


class DynamicRangeQuantization(StrictModel):
    """Weights stored as int8, activations computed in float (no representative data needed)."""

    kind: Literal["dynamic"]
    """Quantization mode."""


class Float16Quantization(StrictModel):
    """Weights stored as float16 (half the size, GPU delegate friendly)."""

    kind: Literal["float16"]
    """Quantization mode."""


class Int8Quantization(StrictModel):
    """Full-integer quantization: int8 weights and activations, calibrated on representative samples."""

    kind: Literal["int8"]
    """Quantization mode."""
    representative_samples: Annotated[StrictInt, Field(ge=1, le=100000)] = 200
    """Training examples used to calibrate activation ranges."""
    input_type: Literal["int8", "uint8", "float32"] = "int8"
    """Inference input type (``float32`` keeps float I/O around an integer model)."""
    output_type: Literal["int8", "uint8", "float32"] = "int8"
    """Inference output type."""


class Int16x8Quantization(StrictModel):
    """16-bit activations with 8-bit weights (more accurate than int8, larger)."""

    kind: Literal["int16x8"]
    """Quantization mode."""
    representative_samples: Annotated[StrictInt, Field(ge=1, le=100000)] = 200
    """Training examples used to calibrate activation ranges."""


TfliteQuantization = Annotated[
    NoQuantization | DynamicRangeQuantization | Float16Quantization | Int8Quantization | Int16x8Quantization,
    Field(discriminator="kind"),
]


class AssetPack(StrictModel):
    """A Play Asset Delivery asset pack holding the model."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,49}$")]
    """Pack name (letters, digits, underscores, starting with a letter); also the Gradle module name."""
    delivery: Literal["install_time", "fast_follow", "on_demand"] = "install_time"
    """Play Asset Delivery mode: ``install_time`` (installed with the app), ``fast_follow`` (downloaded right
    after install) or ``on_demand`` (downloaded when the app asks for it)."""


class Android(StrictModel):
    """Android app integration of a TFLite model."""

    package: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")]
    """Application id / Kotlin package of the app (e.g. ``com.example.digits``)."""
    asset_pack: AssetPack
    """The asset pack the model ships in."""
    min_sdk: Annotated[StrictInt, Field(ge=21, le=40)] = 24
    """``minSdk`` assumed by the loading example."""


class TfliteTarget(StrictModel):
    """A TensorFlow Lite model for mobile, optionally packaged as an Android asset pack."""

    kind: Literal["tflite"]
    """Target kind."""
    name: DnsLabel
    """Target name (unique in the spec); its files go to ``<out>/<name>/``."""
    quantization: TfliteQuantization = NoQuantization(kind="none")
    """Post-training quantization mode."""
    supported_ops: list[Literal["tflite_builtins", "tflite_builtins_int8", "select_tf_ops"]] | None = None
    """Op sets the converter may use; derived from the quantization mode when omitted."""
    android: Android | None = None
    """Android asset-pack bundle."""
    released: Released | None = None
    """The released ``.tflite`` (``kind: tflite`` or ``dist``) that ``tfspec run`` measures beside the candidate on
    the current test split: both are in the report, and ``gates.vs_released`` compares them."""
    gates: TfliteGates = TfliteGates()
    """Quality gates on the converted ``.tflite`` model, measured with the LiteRT interpreter on the test split."""
    accelerators: Annotated[list[Accelerator], Field(min_length=1, max_length=3)] | None = None
    """Accelerators the Android loader tries, in order: the first the device supports runs the model and the
    CPU is the fallback of every choice (list ``cpu`` last, or leave it out). ``[gpu, cpu]`` for float32 and
    float16 models when omitted, ``[cpu]`` for the others (an ``int8`` model suits ``npu``)."""
    sparse_weights: StrictBool = False
    """Keep a pruned model's zero weights out of the ``.tflite`` file (the converter's
    ``Optimize.EXPERIMENTAL_SPARSITY``): the raw file the phone maps shrinks (the gzipped one does not).
    Needs a ``prune`` compression stage. A sparse ``int8`` model runs without XNNPACK, which cannot prepare
    its DENSIFY ops."""
    cpu_threads: Annotated[StrictInt, Field(ge=1, le=16)] = 2
    """Threads of the CPU (XNNPACK) kernels on the device, also for the ops a delegate leaves to the CPU."""
    filename: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\.tflite$")] | None = None
    """File name of the model; ``<spec name>.tflite`` when omitted."""


    @field_validator("accelerators")
    @classmethod
    def _accelerators_in_order(cls, chosen: list[str] | None) -> list[str] | None:
        if chosen is None:
            return None
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"{chosen} names an accelerator twice")
        if "cpu" in chosen[:-1]:
            raise ValueError(f"{chosen}: cpu is the fallback of every choice, list it last")
        return chosen


class Batching(StrictModel):
    """TF Serving server-side request batching (``BatchingParameters``)."""

    max_batch_size: Annotated[StrictInt, Field(ge=1, le=65536)] = 32
    """Largest batch the server forms."""
    batch_timeout_micros: Annotated[StrictInt, Field(ge=0, le=60_000_000)] = 1000
    """Longest a request waits for a batch to fill."""
    max_enqueued_batches: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None
    """Batches queued before requests are rejected; ``num_batch_threads`` when omitted (TF Serving's batching
    guide for online serving: a bounded queue, overload goes to other replicas instead of waiting)."""
    num_batch_threads: Annotated[StrictInt, Field(ge=1, le=1024)] | None = None
    """Threads processing batches; the container's CPU limit in whole cores (at least 1) when omitted."""
    allowed_batch_sizes: list[PositiveInt] | None = None
    """Padded batch sizes, increasing, the last equal to ``max_batch_size``."""
    pad_variable_length_inputs: StrictBool = False
    """Pad inputs of differing lengths within a batch."""


class Warmup(StrictModel):
    """Warm-up requests TF Serving replays at load time (``assets.extra/tf_serving_warmup_requests``)."""

    requests: Annotated[StrictInt, Field(ge=1, le=1000)] = 10
    """Number of PredictRequests, built from real test samples (TF Serving reads at most 1000)."""


class LatestVersions(StrictModel):
    """Serve the newest N versions."""

    kind: Literal["latest"]
    """Policy kind."""
    num_versions: Annotated[StrictInt, Field(ge=1, le=100)] = 1
    """How many versions."""


class AllVersions(StrictModel):
    """Serve every version found under the base path."""

    kind: Literal["all"]
    """Policy kind."""


class SpecificVersions(StrictModel):
    """Serve exactly these versions."""

    kind: Literal["specific"]
    """Policy kind."""
    versions: Annotated[list[PositiveInt], Field(min_length=1)]
    """Version numbers."""


VersionPolicy = Annotated[LatestVersions | AllVersions | SpecificVersions, Field(discriminator="kind")]


class Autoscale(StrictModel):
    """HorizontalPodAutoscaler (autoscaling/v2) on CPU utilisation."""

    min: Annotated[StrictInt, Field(ge=1, le=1000)] = 1
    """Fewest replicas."""
    max: Annotated[StrictInt, Field(ge=1, le=1000)] = 5
    """Most replicas."""
    target_cpu_percent: Annotated[StrictInt, Field(ge=1, le=100)] = 70
    """Average CPU utilisation the autoscaler aims at."""

    @model_validator(mode="after")
    def _min_not_above_max(self) -> "Autoscale":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class KserveAutoscale(StrictModel):
    """Replica range and the metric KServe scales the predictor on.

    ``Knative`` mode (Knative's pod autoscaler, KPA) scales on ``concurrency`` (in-flight requests per pod)
    or ``rps`` (requests per second per pod) and rejects ``cpu`` and ``memory``; ``Standard`` mode (a
    HorizontalPodAutoscaler) scales on ``cpu`` (utilisation, percent) or ``memory`` (MiB per pod). The
    build refuses a metric the chosen ``deployment_mode`` does not accept.
    """

    min: Annotated[StrictInt, Field(ge=1, le=1000)] = 1
    """Fewest replicas."""
    max: Annotated[StrictInt, Field(ge=1, le=1000)] = 5
    """Most replicas."""
    metric: Literal["concurrency", "rps", "cpu", "memory"] | None = None
    """What the autoscaler watches; ``concurrency`` in ``Knative`` mode and ``cpu`` in ``Standard`` mode
    when omitted."""
    target: Annotated[StrictInt, Field(ge=1, le=1_000_000)] | None = None
    """The metric's target per pod: in-flight requests (``concurrency``), requests per second (``rps``), a
    utilisation percentage of 1-100 (``cpu``) or MiB (``memory``); KServe's default when omitted."""

    @model_validator(mode="after")
    def _min_not_above_max(self) -> "KserveAutoscale":
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class RollingUpdate(StrictModel):
    """How a Deployment replaces its pods (``strategy.rollingUpdate``)."""

    max_surge: Annotated[StrictInt, Field(ge=0, le=1000)] | None = None
    """Pods created above the replica count during a rollout. 1 on CPU; 0 with GPUs, where a surge pod
    needs a spare GPU and stays Pending on a full node pool, blocking the rollout."""
    max_unavailable: Annotated[StrictInt, Field(ge=0, le=1000)] | None = None
    """Pods taken down before their replacement is ready. 0 on CPU (full capacity throughout); 1 with GPUs
    (one replica less while rolling, no spare GPU needed). ``max_surge`` and this cannot both be 0."""


class ResourceAmounts(StrictModel):
    """CPU and memory amounts."""

    cpu: KubeQuantity
    """CPU (e.g. ``"1"``, ``"500m"``)."""
    memory: KubeQuantity
    """Memory (e.g. ``"2Gi"``)."""


class Resources(StrictModel):
    """Container resource requests and limits."""

    requests: ResourceAmounts = ResourceAmounts(cpu="1", memory="1Gi")
    """Guaranteed amounts."""
    limits: ResourceAmounts = ResourceAmounts(cpu="2", memory="2Gi")
    """Upper bounds."""


class Toleration(StrictModel):
    """A pod toleration (``spec.tolerations[]``)."""

    key: LabelKey
    """Taint key (e.g. ``nvidia.com/gpu``)."""
    operator: Literal["Exists", "Equal"] = "Exists"
    """Match operator."""
    value: LabelValue | None = None
    """Taint value (``Equal`` only)."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"
    """Taint effect."""


class TopologySpread(StrictModel):
    """Pod topology spread constraints of the serving replicas (``topologySpreadConstraints``)."""

    topology_keys: list[LabelKey] = ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    """Node labels to spread over, one constraint each (an empty list turns spreading off)."""
    max_skew: Annotated[StrictInt, Field(ge=1, le=100)] = 1
    """Largest allowed difference of replica counts between two domains."""
    when_unsatisfiable: Literal["ScheduleAnyway", "DoNotSchedule"] = "ScheduleAnyway"
    """``ScheduleAnyway`` (a preference: a single-zone cluster still schedules) or ``DoNotSchedule``."""


class Kubernetes(StrictModel):
    """Kubernetes deployment of the serving container."""

    namespace: DnsLabel | None = None
    """Namespace (set by kustomize); the current namespace when omitted."""
    replicas: Annotated[StrictInt, Field(ge=1, le=1000)] = 1
    """Replicas (the HPA's minimum takes over when autoscaling)."""
    autoscale: Autoscale | None = None
    """Horizontal autoscaling."""
    resources: Resources = Resources()
    """Container resources."""
    node_selector: dict[LabelKey, LabelValue] = {}
    """Node labels the pods require."""
    tolerations: list[Toleration] = []
    """Extra tolerations (the GPU taint is added automatically when GPUs are asked for)."""
    min_available: Annotated[StrictInt, Field(ge=0, le=MAX_INT)] | None = None
    """PodDisruptionBudget ``minAvailable`` instead of ``max_unavailable`` (give one of the two)."""
    max_unavailable: Annotated[StrictInt, Field(ge=1, le=MAX_INT)] | Percentage | None = None
    """PodDisruptionBudget ``maxUnavailable``: pods a voluntary disruption (a node drain) may evict at once, a
    count or a percentage of the replicas; 1 when omitted (and ``min_available`` is not given)."""
    image: ImageReference | None = None
    """Registry repository the built serving image is pushed to, optionally pinned by digest
    (``repo@sha256:...``); ``<registry>/<spec name>-<target name>`` when omitted. The tag is derived from
    the served content."""
    gpu_feature_discovery: StrictBool = False
    """Also require the ``nvidia.com/gpu.present=true`` node label. Only NVIDIA GPU Feature Discovery (or the
    GPU operator) sets it; the ``nvidia.com/gpu`` limit alone already schedules onto GPU nodes."""
    drain_seconds: Annotated[StrictInt, Field(ge=0, le=600)] = 15
    """Seconds a terminating pod keeps serving (a preStop sleep) while endpoints stop sending it requests:
    TF Serving has no SIGTERM drain. The termination grace period is this plus 15 seconds."""
    topology_spread: TopologySpread = TopologySpread()
    """How replicas spread over zones and nodes; zone and node with ``ScheduleAnyway`` when omitted."""
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    """Type of the Kubernetes Service in front of the replicas (``ClusterIP``: reachable inside the cluster only).
    gRPC clients keep one HTTP/2 connection, so a ClusterIP balances connections, not requests: see the
    target's docs for a headless Service or a mesh."""
    rolling_update: RollingUpdate = RollingUpdate()
    """``maxSurge`` / ``maxUnavailable`` of the Deployment; chosen from ``gpus`` when omitted."""
    canary_replicas: Annotated[StrictInt, Field(ge=1, le=1000)] = 1
    """Replicas of each Deployment serving a labelled version other than the default one (see
    ``version_labels``)."""
    service_account: DnsLabel | None = None
    """Existing ServiceAccount the pods run as, e.g. one bound to a cloud identity for the model store
    (IRSA's ``eks.amazonaws.com/role-arn``, GKE Workload Identity's ``iam.gke.io/gcp-service-account``); the
    namespace's ``default`` account when omitted. Its API token is still not mounted."""
    image_pull_secrets: list[DnsLabel] = []
    """Secrets (``kubernetes.io/dockerconfigjson``) the kubelet pulls the images with (``imagePullSecrets``)."""


class ModelStore(StrictModel):
    """Object storage holding the served versions (``<base_path>/<version>/``) instead of the image.

    ``tfspec run`` uploads each new version so that the server never sees a half-written one and keeps the
    newest ``keep_versions``; the serving image then carries only its configuration. Credentials are never
    written into the spec: ``tfspec run`` uses the client's standard environment (``AWS_ACCESS_KEY_ID``,
    ``AWS_PROFILE``, ``GOOGLE_APPLICATION_CREDENTIALS``, ...), the pods a Kubernetes Secret named here.
    """

    base_path: ObjectStoragePath
    """Folder of the model's versions: ``s3://bucket/models/digits`` or ``gs://bucket/models/digits``."""
    keep_versions: Annotated[StrictInt, Field(ge=1, le=100)] = 3
    """Versions kept in the store; older ones are deleted after an upload (named versions never are)."""
    endpoint_url: EndpointUrlWithPath | None = None
    """Endpoint of an S3-compatible store (MinIO, Ceph, ...); AWS S3 when omitted."""
    region: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")] | None = None
    """S3 region; the client's default when omitted."""
    credentials: Credentials = Credentials()
    """Credentials by reference; a model store reads only ``kubernetes_secret`` (``tfspec run`` uploads with
    the storage client's own credentials: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` or an
    instance role for S3, the application default credentials for GCS). ``kubernetes_secret`` holds the
    pods' store credentials; none when
    they get access another way (a ``service_account`` bound to IRSA or Workload Identity). ``tf_serving``
    mounts it as files: key ``credentials`` (an AWS shared credentials file) for S3, ``key.json`` (a
    service-account key) for GCS. ``kserve`` hands it to KServe's storage initializer through a generated
    ServiceAccount: keys ``awsAccessKeyID`` and ``awsSecretAccessKey`` for S3,
    ``gcloud-application-credentials.json`` for GCS."""
    credentials_secret: DnsLabel | None = Field(default=None, json_schema_extra={"deprecated": True})
    """Deprecated: the earlier spelling of ``credentials.kubernetes_secret``, still read (with a build
    warning) in this release."""
    poll_seconds: Annotated[StrictInt, Field(ge=1, le=86400)] = 30
    """Seconds between two listings of the store by each ``tf_serving`` replica (TF Serving's
    ``--file_system_poll_wait_seconds`` for ``gs://``, the sync container's interval for ``s3://``): a new
    version is picked up within this time. TF Serving's own default of 1 s is one LIST request per second
    per replica."""

    @model_validator(mode="before")
    @classmethod
    def _earlier_secret_spelling(cls, data: Any) -> Any:
        """``credentials_secret: NAME`` reads as ``credentials: {kubernetes_secret: NAME}``."""
        if not isinstance(data, dict) or data.get("credentials_secret") is None:
            return data
        credentials = data.get("credentials")
        if credentials is None:
            credentials = {}
        elif isinstance(credentials, Credentials):
            credentials = credentials.model_dump(exclude_unset=True)
        if not isinstance(credentials, dict):
            return data  # the credentials field reports its own type error
        if credentials.get("kubernetes_secret") is not None:
            raise ValueError("credentials_secret is the earlier spelling of credentials.kubernetes_secret: "
                             "give only credentials.kubernetes_secret")
        return {**data, "credentials": {**credentials, "kubernetes_secret": data["credentials_secret"]}}


class TfServingTarget(StrictModel):
    """A TensorFlow Serving container (and Kubernetes deployment) serving the SavedModel."""

    kind: Literal["tf_serving"]
    """Target kind."""
    name: DnsLabel
    """Target name (unique in the spec); its files go to ``<out>/<name>/``."""
    serving_version: ImageTag | None = None
    """``tensorflow/serving`` image version; the pinned default (data table) when omitted."""
    batching: Batching | None = None
    """Server-side batching; off when omitted."""
    warmup: Warmup | None = None
    """Warm-up records written by ``tfspec run``; none when omitted."""
    gpus: Annotated[StrictInt, Field(ge=0, le=16)] = 0
    """GPUs per replica; more than 0 selects the ``-gpu`` image and ``nvidia.com/gpu`` limits."""
    version_policy: VersionPolicy = LatestVersions(kind="latest")
    """Which versions the server loads."""
    version_labels: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")], PositiveInt] = {}
    """Labels such as ``stable`` / ``canary`` mapped to version numbers; a rollback is a change of the label in
    Git. TF Serving answers a request without a label with the highest version it loaded, so each labelled
    version gets its own Deployment: the default one (``<spec>-<target>``, Service of the same name) serves
    the ``default_label``'s version and answers unlabelled requests; every other version is served by
    ``<spec>-<target>-<label>`` (its own Service, ``kubernetes.canary_replicas`` replicas). Not combined with
    an explicit ``version_policy``."""
    default_label: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")] = "stable"
    """The label whose version answers requests that name no label (the spec's ``version`` when
    ``version_labels`` has no such label)."""
    allow_unavailable_version_labels: StrictBool = False
    """Pass ``--allow_version_labels_for_unavailable_models``: a label may name a version that is not loaded
    (yet); otherwise TF Serving refuses such a label at start-up."""
    model_store: ModelStore | None = None
    """Serve from object storage instead of baking the SavedModel into the image."""
    base_image: BaseImage | None = None
    """Base image instead of the pinned ``tensorflow/serving`` one, e.g. pinned by digest."""
    monitoring: StrictBool = True
    """Expose Prometheus metrics on the REST port."""
    kubernetes: Kubernetes | None = None
    """Kubernetes manifests; none when omitted."""
    released: Released | None = None
    """The released SavedModel (``kind: model_store``, ``dist`` or ``saved_model``) that ``tfspec run`` measures
    beside the candidate on the current test split: both are in the report, ``gates.vs_released`` compares them
    and the upload waits for every gate."""
    gates: Gates = Gates()
    """Quality gates on the SavedModel."""


class Storage(StrictModel):
    """A volume for training data and checkpoints."""

    claim_name: DnsLabel | None = None
    """Existing PersistentVolumeClaim; a new claim ``<name>-data`` is generated when omitted."""
    size: KubeQuantity = "10Gi"
    """Size of the generated claim."""
    storage_class: DnsLabel | None = None
    """Storage class of the generated claim; the cluster default when omitted."""
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce"] = "ReadWriteMany"
    """Access mode: every worker mounts the claim, so several workers need ReadWriteMany, and a generated
    ReadWriteMany claim needs a ``storage_class`` that offers it (common default classes are ReadWriteOnce).
    ReadWriteOnce when omitted and the target has one worker."""
    mount_path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_./-]{0,200}$")] = "/workspace"
    """Mount path in the containers."""


# A Kubernetes object name that may contain dots (PriorityClass names are DNS subdomains).
DnsSubdomain = Annotated[str, StringConstraints(
    pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length=253)]


class Queue(StrictModel):
    """Kueue admission: the training job waits in a team's quota (a ``LocalQueue``) until Kueue admits it,
    instead of starting with only some of its GPUs or failing to schedule."""

    name: DnsLabel
    """``LocalQueue`` in the job's namespace: the ``kueue.x-k8s.io/queue-name`` label of the JobSet (Job,
    TFJob). Kueue's webhook suspends the job on creation and resumes it once admitted."""
    priority_class: DnsSubdomain | None = None
    """Kubernetes ``PriorityClass`` of the worker pods (``priorityClassName``): their scheduling priority,
    and the workload priority Kueue orders and preempts by (what Kueue documents for JobSet)."""
    workload_priority_class: DnsLabel | None = None
    """Kueue ``WorkloadPriorityClass`` (the ``kueue.x-k8s.io/priority-class`` label): the priority in the queue
    only, without changing the pods' priority; it wins over ``priority_class`` for queueing."""


class GpuClusterTarget(StrictModel):
    """Multi-worker training on a Kubernetes GPU cluster (a JobSet, a Kubeflow TFJob or an Indexed Job)."""

    kind: Literal["gpu_cluster"]
    """Target kind."""
    name: DnsLabel
    """Target name (unique in the spec); its files go to ``<out>/<name>/``."""
    workers: Annotated[StrictInt, Field(ge=1, le=1000)] = 2
    """Worker replicas (MultiWorkerMirroredStrategy: worker 0 is the chief)."""
    gpus_per_worker: Annotated[StrictInt, Field(ge=0, le=16)] = 1
    """GPUs per worker."""
    operator: Literal["jobset", "tfjob", "indexed_job"] = "jobset"
    """``jobset`` (a ``jobset.x-k8s.io/v1alpha2`` JobSet: the JobSet controller, stable DNS names, restarts of
    every worker together), ``indexed_job`` (plain Kubernetes: an Indexed Job and a headless Service) or
    ``tfjob`` (Kubeflow TFJob: needs the Training Operator 1.9, no longer maintained upstream; a build
    warning says so)."""
    namespace: DnsLabel | None = None
    """Namespace; the current namespace when omitted."""
    image: ImageReference | None = None
    """Registry repository of the training image, optionally pinned by digest (``repo@sha256:...``);
    ``<registry>/<spec name>-<target name>`` when omitted. The tag is derived from the image's content."""
    base_image: BaseImage | None = None
    """Base image instead of the pinned ``tensorflow/tensorflow`` one, e.g. pinned by digest."""
    gpu_feature_discovery: StrictBool = False
    """Also require the ``nvidia.com/gpu.present=true`` node label (set only by NVIDIA GPU Feature Discovery or
    the GPU operator); the ``nvidia.com/gpu`` limit alone already schedules onto GPU nodes."""
    ttl_seconds_after_finished: Annotated[StrictInt, Field(ge=0, le=31_536_000)] = 86400
    """Seconds a finished job (and its pods' logs) is kept before Kubernetes deletes it."""
    resources: Resources = Resources(
        requests=ResourceAmounts(cpu="4", memory="16Gi"), limits=ResourceAmounts(cpu="8", memory="32Gi")
    )
    """CPU and memory per worker (GPUs come from ``gpus_per_worker``)."""
    node_selector: dict[LabelKey, LabelValue] = {}
    """Node labels the workers require."""
    tolerations: list[Toleration] = []
    """Extra tolerations (the GPU taint is added automatically)."""
    storage: Storage = Storage()
    """Data and checkpoint volume."""
    backoff_limit: Annotated[StrictInt, Field(ge=0, le=100)] = 3
    """Retries before the job is failed. ``jobset``: the JobSet's ``failurePolicy.maxRestarts`` (every worker
    restarted together, resuming from the last epoch's checkpoint); ``indexed_job``: the Job's
    ``backoffLimit``; ``tfjob``: ``runPolicy.backoffLimit``."""
    port: Annotated[StrictInt, Field(ge=1024, le=65535)] = 2222
    """Worker port of the collective ops (the TFJob operator always uses 2222)."""
    queue: Queue | None = None
    """Kueue queue and priority of the training job; the job starts at once when omitted."""
    service_account: DnsLabel | None = None
    """ServiceAccount the workers run as, in the job's namespace: for a cloud identity that reaches the data
    and the registry (IRSA's ``eks.amazonaws.com/role-arn`` annotation, GKE Workload Identity's
    ``iam.gke.io/gcp-service-account``). Its API token is not mounted; the namespace's ``default`` when omitted."""
    image_pull_secrets: Annotated[list[DnsSubdomain], Field(max_length=8)] = []
    """Secrets (``kubernetes.io/dockerconfigjson``) in the job's namespace that the kubelet pulls the training
    image with, for a private registry without node-level credentials."""


class KserveTarget(StrictModel):
    """A KServe ``InferenceService`` (``serving.kserve.io/v1beta1``) serving the SavedModel from a model store."""

    kind: Literal["kserve"]
    """Target kind."""
    name: DnsLabel
    """Target name (unique in the spec); its files go to ``<out>/<name>/``."""
    model_store: ModelStore
    """Where ``tfspec run`` uploads the versions, each under ``<base_path>/<version>/<version>/``; the
    predictor's ``storageUri`` is ``<base_path>/<version>/``, so every revision keeps the version it was
    created for."""
    namespace: DnsLabel | None = None
    """Namespace (set by kustomize); the current namespace when omitted."""
    deployment_mode: Literal["Knative", "Standard"] = "Knative"
    """KServe deployment mode, stated in the ``serving.kserve.io/deploymentMode`` annotation: ``Knative``
    (KServe's shipped default, formerly ``Serverless``: a Knative Service, revisions, canary traffic
    splits, autoscaling on concurrency or rps) or ``Standard`` (formerly ``RawDeployment``: a Deployment
    and a HorizontalPodAutoscaler on cpu or memory, no ``canary_traffic_percent``). KServe 0.16 or newer
    (older releases know only the former names)."""
    runtime_version: ImageTag | None = None
    """TF Serving version of KServe's TensorFlow runtime (the image tag; ``-gpu`` is appended when ``gpus``
    is more than 0); the pinned default (data table) when omitted."""
    gpus: Annotated[StrictInt, Field(ge=0, le=16)] = 0
    """GPUs per replica: the ``nvidia.com/gpu`` limit, the ``-gpu`` runtime image and the GPU toleration."""
    resources: Resources = Resources()
    """Container resources of the predictor."""
    autoscale: KserveAutoscale = KserveAutoscale()
    """Replica range and the metric KServe scales on (what the ``deployment_mode`` accepts)."""
    canary_traffic_percent: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    """Share of traffic the newest revision gets while the previous one keeps the rest (``Knative`` mode
    only); a rollback is setting it to 0, a promotion removing it."""
    service_account: DnsLabel | None = None
    """Existing ServiceAccount of the predictor (e.g. one bound to IRSA or Workload Identity, with any
    ``serving.kserve.io/s3-*`` annotations on it); when omitted and the store names a ``credentials.kubernetes_secret``,
    ``endpoint_url`` or ``region``, one is generated (``kubernetes/serviceaccount.yaml``)."""
    image_pull_secrets: list[DnsLabel] = []
    """Secrets the kubelet pulls the runtime image with (``imagePullSecrets``), e.g. for a registry mirror."""
    node_selector: dict[LabelKey, LabelValue] = {}
    """Node labels the predictor pods require (e.g. a GPU model)."""
    tolerations: list[Toleration] = []
    """Extra tolerations (the ``nvidia.com/gpu`` taint is tolerated automatically when ``gpus`` > 0)."""
    released: Released | None = None
    """The released SavedModel (``kind: model_store``, ``dist`` or ``saved_model``) that ``tfspec run`` measures
    beside the candidate on the current test split: both are in the report, ``gates.vs_released`` compares them
    and the upload waits for every gate."""
    gates: Gates = Gates()
    """Quality gates on the SavedModel."""


Target = Annotated[TfliteTarget | TfServingTarget | GpuClusterTarget | KserveTarget, Field(discriminator="kind")]

TARGET_KINDS: tuple[str, ...] = ("tflite", "tf_serving", "gpu_cluster", "kserve")
