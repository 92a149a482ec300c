"""One typed params model per step kind: every value the step needs, resolved by the compiler.

A step reads its params and nothing else of the spec: defaults are filled here (a fine-tuning learning
rate is a number, never "the optimizer's when omitted"), file names and folders are decided here. The
sections a step hands to a builder are typed too, all the way down: the model (``architecture``, ``layers``),
how it is fitted (``training``: the optimizer and its schedule, loss, early stopping, distribution,
augmentation) and the data source (``data``). No field is JSON left for the runtime to interpret.
"""

from typing import Annotated, Literal, Union

from pydantic import Field

from .architecture import ModelParams
from .common import InputParams, Params
from .data import MissingValuesParams, PreprocessingParams, SourceParams, SplitParams, StorageParams
from .training import EarlyStoppingParams, FitParams, QualityMetric

__all__ = [
    "Params",
    "InputParams",
    "TensorParams",
    "DataParams",
    "TrainParams",
    "EvaluateParams",
    "ExportParams",
    "WarmupParams",
    "Accelerator",
    "TfliteParams",
    "GatesParams",
    "TfliteGatesParams",
    "GATE_NAMES",
    "TfliteVerifyParams",
    "SavedModelVerifyParams",
    "AssetPackParams",
    "AndroidParams",
    "ReleasedGateParams",
    "CompareParams",
    "ReleasedFile",
    "ContractInput",
    "ContractParams",
    "ReleasedParams",
    "MODEL_INFO_FILES",
    "TfliteBundleParams",
    "SavedModelBundleParams",
    "UploadParams",
    "RenderParams",
    "VerifyParams",
    "BundleParams",
]


class TensorParams(Params):
    """The model's input and output tensors."""

    input_name: str
    output_name: str
    input_shape: list[int]
    input_dtype: str


class DataParams(Params):
    """``data``: index the source, split it by hashed keys; write ``manifest.json`` and ``data_info.json``."""

    source: SourceParams
    """The resolved ``data.source``; paths relative to the plan root."""
    split: SplitParams
    preprocessing: PreprocessingParams
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
    storage: StorageParams | None
    """``data.storage``: object-store endpoint and credential variable names (never values)."""
    cache_format: Literal[3]
    """3: the manifest holds the typed source (2 held it as loose JSON, 1 was a copy of the data)."""
    inputs: list[InputParams] | None
    """A model with several inputs: each one's slice of the flat example (``input_shape``, in this order),
    read as a feature of that name. None for one input."""
    missing_values: MissingValuesParams | None
    """``data.missing_values``: how missing feature values are imputed from the training split; None: a
    missing or non-finite feature value is an error."""
    label_values: list[str] | None
    """A CSV label column of class names: its values in class-index order (what the compiler read from the
    file, ``labels`` too); None for numeric labels."""


class TrainParams(Params):
    """``train``: build the model and fit it."""

    model: ModelParams
    """The resolved ``model`` section (what ``model_builder`` builds); paths relative to the plan root."""
    fit: FitParams
    epochs: int
    early_stopping: EarlyStoppingParams | None
    """None: off."""
    checkpoint_every_epoch: bool
    trainable: bool
    """False for a frozen ``saved_model`` model: nothing is fitted."""
    input_name: str
    output_name: str
    num_classes: int | None
    metric: QualityMetric
    """The quality metric the trained model is measured with (a SavedModel served as it is reports it)."""
    input_digests: dict[str, str] | None
    """Key path → sha256 of a SavedModel folder or a builder's modules (None when the model is in the spec)."""


class EvaluateParams(Params):
    """``evaluate``: every model step measured once on the test split (the reference of every gate)."""

    metric: QualityMetric
    num_classes: int | None
    naive_baseline: Literal["fail", "warn"]
    """``training.naive_baseline``: a model no better than the naive baseline fails the run, or is warned about."""


class ExportParams(TensorParams):
    name: str
    version: int
    signature: str
    input_name: str | None  # type: ignore[assignment]
    """None for a SavedModel served as it is: its signature names the keys."""
    output_name: str | None  # type: ignore[assignment]
    as_is: bool
    """Copy the train step's SavedModel unchanged (``model.serve_as_is``) instead of re-exporting."""
    inputs: list[InputParams] | None
    """A model with several inputs: the signature's input keys, shapes and dtypes (``input_*`` name the first)."""
    raw_input_shape: list[int] | None
    """``data.preprocessing.in_model``: the signature takes raw float32 examples of this shape and applies the
    data's preprocessing inside (rescale, the training split's normalisation, reshape). None: preprocessed."""


class WarmupParams(Params):
    requests: int
    model_name: str
    signature: str
    input_name: str | None
    """None for a SavedModel served as it is: the signature's one input."""
    raw_inputs: bool
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
    signature: str | None
    """Set for a SavedModel served as it is: converted with ``from_saved_model`` through this signature."""
    raw_input_shape: list[int] | None
    """As :attr:`ExportParams.raw_input_shape`: the ``.tflite`` takes raw examples (calibrated on raw ones)."""


class GatesParams(Params):
    """A target's gates on its artifact; None: that gate is not set. Drops and increases are measured from the
    trained Keras model (the evaluate step)."""

    max_accuracy_drop: float | None
    min_accuracy: float | None
    max_error_increase: float | None
    max_error: float | None
    max_size_kb: float | None
    max_latency_ms: float | None


GATE_NAMES: tuple[str, ...] = tuple(GatesParams.model_fields)
"""The quality gates, in the order they are checked and reported."""


class TfliteGatesParams(GatesParams):
    gpu_delegable: bool
    """No op of the ``.tflite`` may fall back from the GPU delegate to the CPU."""
class ReleasedGateParams(Params):
    """The ``gates.vs_released`` limits (None: that gate is not set); see ``spec.released.ReleasedGates``."""

    max_accuracy_drop: float | None
    min_accuracy_gain: float | None
    max_error_increase: float | None
    min_error_decrease: float | None
    max_size_growth_percent: float | None
    max_latency_growth_percent: float | None


MODEL_INFO_FILES: dict[str, str] = {"saved_model": "assets.extra/tfspec_model_info.json", "tflite": "model_info.json"}
"""Where a bundle records its input contract and normalisation, per artifact: inside an exported SavedModel
(TF Serving reads nothing in ``assets.extra`` but warm-up records), beside a bundled ``.tflite``. The runtime
writes them; the compiler looks for them in a released model."""


class ReleasedFile(Params):
    """One file of the released model and what identifies its content."""

    name: str
    """Relative to the released model's ``location``."""
    size: int
    digest: str
    """sha256 of a local file; the ETag (S3) or generation (GCS) of an object in a store."""


class ContractInput(Params):
    """One input the candidate's served signature (or ``.tflite``) takes."""

    name: str
    dtype: str
    """The element type (a ``.tflite``'s may differ: its quantization parameters say how to feed it)."""
    shape: list[int]
    """One example's shape, without the batch axis."""


class ContractParams(Params):
    """The candidate's input contract, which the released model must take to be compared with it."""

    signature: str | None
    """The SavedModel signature the candidate serves; None for a ``.tflite``."""
    inputs: list[ContractInput]
    output_key: str | None
    """The signature output verify reads; None: a ``.tflite``'s one output (or the model's only one)."""
    input_contract: Literal["raw", "preprocessed"]
    """``raw``: the preprocessing runs inside the model (``data.preprocessing.in_model``)."""


class ReleasedParams(Params):
    """``released``: the target's released model copied into the cache (a store version downloaded), its files
    checked against the identity the build recorded, and its input contract checked against the candidate's."""

    artifact: Literal["saved_model", "tflite"]
    location: str
    """A local folder (relative to the plan root, or absolute) or the store version's URL (``s3://b/p/2``)."""
    endpoint_url: str | None
    """The model store's S3-compatible endpoint (None: AWS, or GCS with the client's own endpoint)."""
    description: str
    version: int | None
    """The store version (None for a dist folder, SavedModel or ``.tflite`` path)."""
    files: list[ReleasedFile]
    """Every file of the released model (sorted by name): what the build found, and what the run must find."""
    model_file: str
    """The ``.tflite`` among ``files`` (``saved_model.pb`` for a SavedModel)."""
    model_info: str | None
    """The model-info file among ``files`` (``MODEL_INFO_FILES``); None: the input contract is assumed."""
    contract: ContractParams
    key_path: list[str | int]
    """``targets[i].released``: where a problem with the released model points in the spec."""


class CompareParams(Params):
    """``compare``: the candidate and the target's released model measured on the same test split with the same
    code (``verify``'s), their latencies timed alternately; the ``vs_released`` gates. A step of its own, so the
    candidate's ``verify`` and ``bundle`` (and the image tags derived from it) do not depend on the released model."""

    artifact: Literal["tflite", "saved_model"]
    metric: QualityMetric
    found: bool
    """False: no released model was found and the spec allows a first release; nothing is measured."""
    description: str
    """Where the released model is (``s3://models/digits version 2``), or where none was found."""
    gates: ReleasedGateParams
    raw_inputs: bool
    """The models take raw examples (``data.preprocessing.in_model``)."""
    filename: str | None
    """A ``.tflite`` candidate: its file in the ``tflite`` step's entry."""
    xnnpack: bool
    """As :attr:`TfliteParams.xnnpack` (the candidate's kernels)."""
    output_key: str | None
    """As :attr:`TfliteVerifyParams.output_key`."""
    input_name: str | None
    """A SavedModel candidate: as :attr:`SavedModelVerifyParams.input_name`."""
    output_name: str | None
    signature: str | None
    """A SavedModel candidate: the signature measured (None for a ``.tflite``)."""


class TfliteVerifyParams(Params):
    artifact: Literal["tflite"]
    filename: str
    gates: TfliteGatesParams
    metric: QualityMetric
    accelerators: list[Accelerator]
    """The accelerators the loader tries, in order (the op coverage of each is recorded either way)."""
    npu_full_integer: bool
    """Gate the model on an NPU's needs (integer I/O, int8 builtin ops only): an int8 target listing ``npu``."""
    xnnpack: bool
    """As :attr:`TfliteParams.xnnpack`."""
    raw_inputs: bool
    """The model takes raw examples (``data.preprocessing.in_model``): fed unpreprocessed data."""
    output_key: str | None
    """A SavedModel served as it is: the signature output read (the ``.tflite`` keeps the signature's output
    keys; the serving verify reads the same one). None: the model's one output."""


class SavedModelVerifyParams(Params):
    artifact: Literal["saved_model"]
    gates: GatesParams
    metric: QualityMetric
    input_name: str | None
    """None for a SavedModel served as it is: ``signature``'s one input is read from it."""
    output_name: str | None
    """The output measured; for a SavedModel served as it is, the one the compiler chose from its signature."""
    signature: str
    raw_inputs: bool
    """The model takes raw examples (``data.preprocessing.in_model``): fed unpreprocessed data."""


class AssetPackParams(Params):
    name: str
    delivery: Literal["install_time", "fast_follow", "on_demand"]


class AndroidParams(Params):
    """The Android asset pack the bundle's ``assets_dir`` lies in."""

    package: str
    asset_pack: AssetPackParams
    min_sdk: int


class TfliteBundleParams(Params):
    artifact: Literal["tflite"]
    filename: str
    android: AndroidParams | None
    """None: no Android app bundle (the model and its files go to the target's folder)."""
    labels: list[str]
    name: str
    version: int
    input_name: str
    output_name: str
    assets_dir: str
    """The dist folder the model, ``labels.txt`` and the model-info JSON go to."""
    xnnpack: bool
    """As :attr:`TfliteParams.xnnpack` (the bundle reads the model's tensors with an interpreter)."""
    raw_inputs: bool
    """The model takes raw examples (``data.preprocessing.in_model``): fed unpreprocessed data."""
    output_key: str | None
    """As :attr:`TfliteVerifyParams.output_key`: the output ``model_info.json`` describes."""
    output_kind: Literal["softmax", "sigmoid", "regression"]
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
    pinned: bool
    """Each version under ``<base_path>/<version>/<version>/`` (a KServe ``storageUri`` per version: the folder
    ``<base_path>/<version>/`` holds that version alone)."""


class RenderParams(Params):
    files: dict[str, str]
    """Rendered file (relative to the build folder) → sha256 of its text."""


VerifyParams = Annotated[Union[TfliteVerifyParams, SavedModelVerifyParams], Field(discriminator="artifact")]
BundleParams = Annotated[Union[TfliteBundleParams, SavedModelBundleParams], Field(discriminator="artifact")]
