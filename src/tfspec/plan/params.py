"""One typed params model per step kind: every value the step needs, resolved by the compiler.

A step reads its params and nothing else of the spec: defaults are filled here (a fine-tuning learning
rate is a number, never "the optimizer's when omitted"), file names and folders are decided here.
Sections that the runtime hands whole to one builder (the model description, the optimizer, the data
source) are plain JSON objects, dumped from the resolved spec with every field present.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "Params",
    "JsonObject",
    "InputParams",
    "SplitParams",
    "PreprocessingParams",
    "DataParams",
    "TrainParams",
    "StageParams",
    "PruneParams",
    "ClusterParams",
    "QatParams",
    "TeacherParams",
    "DistillParams",
    "EvaluateParams",
    "ExportParams",
    "WarmupParams",
    "Accelerator",
    "TfliteParams",
    "TfliteVerifyParams",
    "SavedModelVerifyParams",
    "TfliteBundleParams",
    "SavedModelBundleParams",
    "UploadParams",
    "RenderParams",
    "StepParams",
    "PARAMS_BY_KIND",
    "parse_params",
]

JsonObject = dict[str, Any]


class Params(BaseModel):
    """Base of every params model: frozen, unknown keys rejected (a plan from another tfspec fails loudly).

    Validators are built on first use (``defer_build``): a build needs only the kinds its plan has."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class TensorParams(Params):
    """The model's input and output tensors."""

    input_name: str
    output_name: str
    input_shape: list[int]
    input_dtype: str


class InputParams(Params):
    """One named model input of a model with several (``model.inputs``)."""

    name: str
    shape: list[int]
    dtype: str


class SplitParams(Params):
    validation: float
    test: float
    seed: int
    stratify: bool


class PreprocessingParams(Params):
    rescale: float | None
    normalize: bool
    reshape: list[int] | None


class DataParams(Params):
    """``data``: index the source, split it by hashed keys; write ``manifest.json`` and ``data_info.json``."""

    source: JsonObject
    """The resolved ``data.source`` (``kind`` and every field of that kind); paths relative to the plan root."""
    split: SplitParams
    preprocessing: PreprocessingParams
    augmentation: JsonObject | None
    labels: list[str]
    num_classes: int | None
    input_shape: list[int]
    input_dtype: str
    loss: str
    num_classes_key: list[str | int]
    """The spec key that fixes the number of classes (the output layer's ``units``), for errors about them."""
    feature_order: list[str] | None
    """tfrecord sources: the features' concatenation order (JSON objects sort their keys)."""
    input_digests: dict[str, str] | None
    """Key path → sha256 of the data files read (None for built-in sources): edited data re-runs the step."""
    memory_budget: int
    """Bytes a split may take when its ``tf.data`` pipeline ``cache()``s it (``data.memory_budget``)."""
    storage: JsonObject | None
    """``data.storage``: object-store endpoint and credential variable names (never values)."""
    cache_format: int = 2
    """2: the entry is a manifest the steps stream from (1 was a copy of the data, ``dataset.npz``)."""
    inputs: list[InputParams] | None = None
    """A model with several inputs: each one's slice of the flat example (``input_shape``, in this order),
    read as a feature of that name. None for one input."""
    missing_values: JsonObject | None = None
    """``data.missing_values`` (strategy, value, CSV markers): how missing feature values are imputed from the
    training split; None: a missing or non-finite feature value is an error."""
    label_values: list[str] | None = None
    """A CSV label column of class names: its values in class-index order (what the compiler read from the
    file, ``labels`` too); None for numeric labels."""


class TrainParams(Params):
    """``train``: build the model and fit it."""

    model: JsonObject
    """The resolved ``model`` section (what ``model_builder`` builds); paths relative to the plan root."""
    fit: JsonObject
    """optimizer, loss, metrics, batch_size, seed, shuffle_buffer, distribution (every key present)."""
    epochs: int
    early_stopping: JsonObject | None
    checkpoint_every_epoch: bool
    trainable: bool
    """False for a frozen ``saved_model`` model: nothing is fitted."""
    metric: Literal["accuracy", "mae"]
    """The quality metric the model is measured with (``mae`` for a regression loss, computed by the compiler)."""
    input_name: str
    output_name: str
    num_classes: int | None
    input_digests: dict[str, str] | None
    """Key path → sha256 of a SavedModel folder or a builder's modules (None when the model is in the spec)."""


class StageParams(TensorParams):
    """What every compression step shares."""

    index: int
    """Position in ``compression``: errors name ``compression[index]``."""
    stage: str
    """The stage kind as the spec says it (``quantization_aware``)."""
    fit: JsonObject
    learning_rate: float
    """The fine-tuning rate: the stage's own, or the training optimizer's initial rate."""
    num_classes: int | None


class PruneParams(StageParams):
    schedule: Literal["constant", "polynomial_decay"]
    target_sparsity: float
    """For ``sparsity_m_by_n``, ``1 - m/n``."""
    initial_sparsity: float
    begin_step: int
    end_step: int | None
    """None: derived from the steps the stage runs (the runtime knows the examples per epoch)."""
    frequency: int | None
    """None: derived from the steps the stage runs (never tfmot's 100)."""
    sparsity_m_by_n: list[int] | None
    skip_layers: list[str]
    fine_tune_epochs: int


class ClusterParams(StageParams):
    number_of_clusters: int
    centroid_init: Literal["kmeans_plus_plus", "linear", "density_based", "random"]
    preserve_sparsity: bool
    skip_layers: list[str]
    fine_tune_epochs: int


class QatParams(StageParams):
    preserve: list[Literal["sparsity", "clusters"]]
    fine_tune_epochs: int


class TeacherParams(Params):
    kind: Literal["self", "saved_model", "spec"]
    path: str | None
    """``saved_model`` / ``spec``: relative to the plan root (``saved_model``: or a location, see
    ``external_locations``)."""
    storage: JsonObject | None = None
    """``saved_model`` in an object store: endpoint and credential variable names (never values)."""


class DistillParams(StageParams):
    teacher: TeacherParams
    teacher_identity: JsonObject | None
    """``spec`` teacher: its final model step and fingerprint; ``saved_model``: the folder's sha256."""
    student: list[JsonObject]
    temperature: float
    alpha: float
    epochs: int


class EvaluateParams(Params):
    """``evaluate``: every model step measured once on the test split (the reference of every gate)."""

    metric: Literal["accuracy", "mae"]
    num_classes: int | None
    naive_baseline: Literal["fail", "warn"] = "fail"
    """``training.naive_baseline``: a model no better than the naive baseline fails the run, or is warned about."""


class ExportParams(TensorParams):
    name: str
    version: int
    signature: str
    input_name: str | None  # type: ignore[assignment]
    """None for a SavedModel served as it is: its signature names the keys."""
    output_name: str | None  # type: ignore[assignment]
    as_is: bool = False
    """Copy the train step's SavedModel unchanged (``model.serve_as_is``) instead of re-exporting."""
    inputs: list[InputParams] | None = None
    """A model with several inputs: the signature's input keys, shapes and dtypes (``input_*`` name the first)."""
    raw_input_shape: list[int] | None = None
    """``data.preprocessing.in_model``: the signature takes raw float32 examples of this shape and applies the
    data's preprocessing inside (rescale, the training split's normalisation, reshape). None: preprocessed."""


class WarmupParams(Params):
    requests: int
    model_name: str
    signature: str
    input_name: str | None
    """None for a SavedModel served as it is: the signature's one input."""
    raw_inputs: bool = False
    """The model takes raw examples (``data.preprocessing.in_model``): fed unpreprocessed data."""


Accelerator = Literal["gpu", "npu", "cpu"]
"""Where the Android loader runs a tflite model (the spec's ``targets[].accelerators``)."""


class TfliteParams(Params):
    quantization: str
    optimizations: list[Literal["DEFAULT", "EXPERIMENTAL_SPARSITY"]]
    """``tf.lite.Optimize`` members: ``DEFAULT`` to quantize, ``EXPERIMENTAL_SPARSITY`` for ``sparse_weights``
    (a pruned model's zero weights left out of the file)."""
    representative_samples: int
    supported_ops: list[str]
    supported_types: list[str]
    inference_input_type: str
    inference_output_type: str
    quantization_aware: bool
    per_channel_dense: bool
    """Quantize Dense kernels per channel (the spec does not ask; per tensor is smaller, see the tflite step)."""
    filename: str
    xnnpack: bool
    """Run the converted model on LiteRT's default XNNPACK kernels; False for a sparse int8 model, whose
    DENSIFY ops XNNPACK cannot prepare (the builtin kernels run it)."""
    signature: str | None = None
    """Set for a SavedModel served as it is: converted with ``from_saved_model`` through this signature."""
    raw_input_shape: list[int] | None = None
    """As :attr:`ExportParams.raw_input_shape`: the ``.tflite`` takes raw examples (calibrated on raw ones)."""


class TfliteVerifyParams(Params):
    artifact: Literal["tflite"]
    filename: str
    gates: JsonObject | None
    """The target's gates, ``gpu_delegable`` among them (no op may fall back from the GPU delegate)."""
    metric: Literal["accuracy", "mae"]
    accelerators: list[Accelerator]
    """The accelerators the loader tries, in order (the op coverage of each is recorded either way)."""
    npu_full_integer: bool
    """Gate the model on an NPU's needs (integer I/O, int8 builtin ops only): an int8 target listing ``npu``."""
    xnnpack: bool
    """As :attr:`TfliteParams.xnnpack`."""
    raw_inputs: bool = False
    """The model takes raw examples (``data.preprocessing.in_model``): fed unpreprocessed data."""
    output_key: str | None = None
    """A SavedModel served as it is: the signature output read (the ``.tflite`` keeps the signature's output
    keys; the serving verify reads the same one). None: the model's one output."""


class SavedModelVerifyParams(Params):
    artifact: Literal["saved_model"]
    gates: JsonObject | None
    metric: Literal["accuracy", "mae"]
    input_name: str | None
    """None for a SavedModel served as it is: ``signature``'s one input is read from it."""
    output_name: str | None
    """The output measured; for a SavedModel served as it is, the one the compiler chose from its signature."""
    signature: str = "serving_default"
    raw_inputs: bool = False
    """The model takes raw examples (``data.preprocessing.in_model``): fed unpreprocessed data."""


class TfliteBundleParams(Params):
    artifact: Literal["tflite"]
    filename: str
    android: JsonObject | None
    labels: list[str]
    name: str
    version: int
    input_name: str
    output_name: str
    assets_dir: str
    """The dist folder the model, ``labels.txt`` and the model-info JSON go to."""
    xnnpack: bool
    """As :attr:`TfliteParams.xnnpack` (the bundle reads the model's tensors with an interpreter)."""
    raw_inputs: bool = False
    """The model takes raw examples (``data.preprocessing.in_model``): fed unpreprocessed data."""
    output_key: str | None = None
    """As :attr:`TfliteVerifyParams.output_key`: the output ``model_info.json`` describes."""
    output_kind: Literal["softmax", "sigmoid", "regression"] = "softmax"
    """What the output holds: scores per class, one sigmoid probability (two labels), or regression values
    (no ``labels.txt``)."""


class SavedModelBundleParams(Params):
    artifact: Literal["saved_model"]
    model_dir: str
    """``<target>/models/<name>/<version>``: where TF Serving finds the version."""
    name: str
    version: int


class UploadParams(Params):
    """A served bundle pushed to a model store (no credentials: the runtime's client finds those itself)."""

    base_path: str
    """``s3://bucket/prefix`` or ``gs://bucket/prefix``: the versions go under ``<base_path>/<version>/``."""
    endpoint_url: str | None
    region: str | None
    keep_versions: int
    """How many versions the store keeps (the required ones are never deleted)."""
    version: int
    model_dir: str
    """The bundle step's ``<target>/models/<name>/<version>`` folder to upload."""
    required_versions: list[int]
    """Versions the store must hold (a policy or a label names them), checked before anything is pushed."""
    key_path: list[str | int]
    """Where a store problem points in the spec (``targets[i].model_store``)."""
    pinned: bool = False
    """Each version under ``<base_path>/<version>/<version>/`` (a KServe ``storageUri`` per version: the folder
    ``<base_path>/<version>/`` holds that version alone)."""


class RenderParams(Params):
    files: dict[str, str]
    """Rendered file (relative to the build folder) → sha256 of its text."""


VerifyParams = Annotated[Union[TfliteVerifyParams, SavedModelVerifyParams], Field(discriminator="artifact")]
BundleParams = Annotated[Union[TfliteBundleParams, SavedModelBundleParams], Field(discriminator="artifact")]

StepParams = Union[
    DataParams, TrainParams, PruneParams, ClusterParams, QatParams, DistillParams, EvaluateParams, ExportParams, WarmupParams,
    TfliteParams, TfliteVerifyParams, SavedModelVerifyParams, TfliteBundleParams, SavedModelBundleParams, UploadParams,
    RenderParams,
]

PARAMS_BY_KIND: dict[str, Any] = {
    "data": DataParams,
    "train": TrainParams,
    "prune": PruneParams,
    "cluster": ClusterParams,
    "qat": QatParams,
    "distill": DistillParams,
    "evaluate": EvaluateParams,
    "export": ExportParams,
    "warmup": WarmupParams,
    "tflite": TfliteParams,
    "verify": VerifyParams,
    "bundle": BundleParams,
    "upload": UploadParams,
    "render": RenderParams,
}

_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def parse_params(kind: str, value: Any) -> StepParams:
    """``value`` (a params model or its JSON form) validated as the params of ``kind``."""
    if kind not in PARAMS_BY_KIND:
        raise ValueError(f"unknown step kind {kind!r}")
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(PARAMS_BY_KIND[kind])
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return adapter.validate_python(value)
