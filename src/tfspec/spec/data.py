"""The ``data`` section: where examples come from, how they are split, preprocessed and augmented."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from .base import (
    DnsLabel, EndpointUrl, FiniteFloat, Identifier, KubeQuantity, PositiveFloat, PositiveInt, SafeText, Seed, StrictBool, StrictInt,
    StrictModel,
)
from .bounds import MAX_CLASSES
from .credentials import Credentials, looks_like_aws_key_id

__all__ = [
    "DATA_LOCATION_PATTERN",
    "looks_like_aws_key_id",
    "DataLocation",
    "Credentials",
    "StorageCredentials",
    "DataStorage",
    "SklearnDigitsSource",
    "NpzSource",
    "CsvSource",
    "TfrecordFeature",
    "TfrecordSource",
    "ImageFolderSource",
    "DataSource",
    "Split",
    "Preprocessing",
    "Augmentation",
    "MISSING_MARKERS",
    "MissingValues",
    "Data",
]


# A relative path inside the project, or (with data.external_locations) an object-store URL, a file:// URL or
# an absolute path: no '..', no shell or template metacharacters, no credentials in the URL.
DATA_LOCATION_PATTERN = (
    r"^(?!.*/\.\.(/|$))((s3|gs)://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[A-Za-z0-9_.*?\-/\[\]=]*)?"
    r"|(file://)?/(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_.*?\-/\[\]=]{1,1000}"
    r"|(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_.*?\-/\[\]]{1,255})$")
DataLocation = Annotated[str, StringConstraints(pattern=DATA_LOCATION_PATTERN)]


# The block's earlier name (data.storage.credentials and workflow.credentials used it first).
StorageCredentials = Credentials


class DataStorage(StrictModel):
    """How object-store data locations (``s3://``, ``gs://``) are reached."""

    endpoint_url: EndpointUrl | None = None
    """S3-compatible endpoint (MinIO, a local emulator), or a GCS JSON-API endpoint for ``gs://`` (an emulator,
    read anonymously); AWS / Google when omitted."""
    credentials: Credentials = Credentials()
    """Credentials by reference: the variables ``tfspec plan``/``run`` read; ``kubernetes_secret``, a Secret
    whose keys are those variable names, gives them to the workflow's pods (``workflow``)."""


class SklearnDigitsSource(StrictModel):
    """The 8x8 handwritten digits set that scikit-learn ships (1797 samples, 64 features, 10 classes)."""

    kind: Literal["sklearn_digits"]
    """Source kind."""


class NpzSource(StrictModel):
    """A NumPy ``.npz`` archive with a feature array and a label array."""

    kind: Literal["npz"]
    """Source kind."""
    path: DataLocation
    """Path of the ``.npz`` file, relative to the spec file (or a location, see ``data.external_locations``)."""
    features: Identifier | Annotated[dict[Identifier, Identifier], Field(min_length=1)] = "x"
    """Name of the feature array inside the archive; for a model with several inputs a mapping from each
    input's name to its array (``{image: x_image, meta: x_meta}``)."""
    labels: Identifier = "y"
    """Name of the integer label array inside the archive."""


CsvColumn = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]


class CsvSource(StrictModel):
    """A CSV file with a header row: one label column and numeric feature columns."""

    kind: Literal["csv"]
    """Source kind."""
    path: DataLocation
    """Path of the CSV file, relative to the spec file (or a location, see ``data.external_locations``)."""
    label_column: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
    """Header name of the label column: integer class indices ``0..N-1``, class names as text (``M``/``B``:
    class ``i`` is the ``i``-th of ``data.labels``, or of the sorted values when ``data.labels`` is not set),
    or numbers for a regression loss."""
    feature_columns: list[CsvColumn] | Annotated[dict[Identifier, Annotated[list[CsvColumn], Field(min_length=1)]],
                                                 Field(min_length=1)] | None = None
    """Header names of the feature columns, in model input order; every other column when omitted. For a
    model with several inputs a mapping from each input's name to its columns (``{size: [w, h], color: [r, g, b]}``)."""
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    """Field delimiter."""


class TfrecordFeature(StrictModel):
    """One fixed-length feature of a ``tf.train.Example``."""

    dtype: Literal["float32", "int64"]
    """Element type (``tf.io.FixedLenFeature`` dtype)."""
    shape: list[PositiveInt]
    """Shape of the feature; ``[]`` for a scalar."""


class TfrecordSource(StrictModel):
    """TFRecord files of ``tf.train.Example`` records."""

    kind: Literal["tfrecord"]
    """Source kind."""
    path: DataLocation
    """File path or glob pattern, relative to the spec file, or ``s3://bucket/shards/*.tfrecord``,
    ``gs://...``, ``file:///...`` or an absolute path (see ``data.external_locations``)."""
    features: dict[Identifier, TfrecordFeature] = Field(min_length=1)
    """Features to parse; the model input is their concatenation in the order given."""
    label: Identifier
    """Name of the int64 label feature."""
    compression: Literal["none", "gzip", "zlib"] = "none"
    """Compression of the TFRecord files (``none``, ``gzip`` or ``zlib``)."""


class ImageFolderSource(StrictModel):
    """A folder with one sub-folder of images per class (the sub-folder names are the labels)."""

    kind: Literal["image_folder"]
    """Source kind."""
    path: DataLocation
    """Folder path, relative to the spec file, or an ``s3://``, ``gs://``, ``file://`` or absolute location
    (see ``data.external_locations``)."""
    image_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]
    """Height and width the images are resized to."""
    color_mode: Literal["grayscale", "rgb"] = "rgb"
    """Number of channels: 1 for grayscale, 3 for rgb."""


DataSource = Annotated[
    SklearnDigitsSource | NpzSource | CsvSource | TfrecordSource | ImageFolderSource,
    Field(discriminator="kind"),
]


class Split(StrictModel):
    """How the examples are divided into training, validation and test sets."""

    validation: Annotated[FiniteFloat, Field(ge=0.0, lt=1.0)] = 0.1
    """Fraction of all examples held out for validation (early stopping, fine-tuning)."""
    test: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.2
    """Fraction of all examples held out for the final test (target verification and gates)."""
    seed: Seed = 0
    """Seed of the shuffle, so the split is the same on every run."""
    stratify: StrictBool = True
    """Keep the class proportions equal across the three sets."""

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> "Split":
        if self.validation + self.test >= 0.9:
            raise ValueError("validation + test must leave at least 10% of the data for training")
        return self


class Preprocessing(StrictModel):
    """Transformations applied to every example, in training and in the exported model's input contract."""

    rescale: PositiveFloat | None = None
    """Multiply features by this factor (e.g. ``0.0625`` for digits' 0..16 range, ``0.00392156862745098`` for bytes)."""
    normalize: StrictBool = False
    """Subtract the training split's per-feature mean and divide by its std (stored in the model-info file)."""
    reshape: list[PositiveInt] | None = None
    """Reshape each example to this shape (e.g. ``[8, 8, 1]`` to feed digits to a conv net)."""
    in_model: StrictBool = False
    """Bake rescale, normalize (the training split's mean and std) and reshape into the exported SavedModel
    and ``.tflite``: clients send raw examples (the source's shape, float32) and nothing is applied outside
    the model. ``model_info.json`` and the generated clients say which contract the served model has."""


class Augmentation(StrictModel):
    """Random image augmentation applied during training only (Keras preprocessing layers)."""

    random_flip: Literal["horizontal", "vertical", "horizontal_and_vertical"] | None = None
    """Flip mode."""
    random_rotation: Annotated[FiniteFloat, Field(gt=0.0, le=1.0)] | None = None
    """Maximum rotation as a fraction of a full turn."""
    random_zoom: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] | None = None
    """Maximum zoom in or out as a fraction of the image size."""
    random_translation: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] | None = None
    """Maximum shift as a fraction of height and width."""
    random_contrast: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] | None = None
    """Maximum contrast change factor."""


MISSING_MARKERS = ("", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "?")
"""CSV cells that mean "missing" unless ``data.missing_values.markers`` says otherwise."""

MissingMarker = Annotated[str, Field(max_length=32, pattern=r"^[^\x00-\x1f]*$")]


class MissingValues(StrictModel):
    """How missing feature values are filled in (imputed). Without this section a missing value is an error
    (file, row and column named, exit 2, before training).

    The fill values come from the training split only (never validation or test), are written to
    ``data_info.json`` and ``model_info.json``, and are applied by the one preprocessing function that
    training, evaluation and verification use; with ``data.preprocessing.in_model`` they are inside the
    exported model, which then takes NaN for a missing value. Labels are never imputed."""

    strategy: Literal["mean", "median", "constant"]
    """``mean`` or ``median`` of each feature over the training split's present values, or ``constant``.
    ``median`` needs the source in memory (``csv``, ``npz``)."""
    value: Annotated[FiniteFloat, Field(ge=-3.4e38, le=3.4e38)] | None = None
    """The fill value of ``strategy: constant``, in the source's units (before rescale and normalize); a
    float32, as the features are."""
    markers: list[MissingMarker] = list(MISSING_MARKERS)
    """CSV cells that mean "missing", compared after stripping spaces. In ``npz`` arrays and ``tfrecord``
    float features a NaN is a missing value. Infinity is never a missing value: it is refused."""

    @model_validator(mode="after")
    def _value_with_constant(self) -> "MissingValues":
        if self.strategy == "constant" and self.value is None:
            raise ValueError("strategy constant needs a value (the fill value, in the source's units)")
        if self.strategy != "constant" and self.value is not None:
            raise ValueError(f"value is the fill value of strategy constant; strategy {self.strategy} computes its own")
        return self


class Data(StrictModel):
    """Where the training examples come from and how they are prepared."""

    source: DataSource
    """The examples: ``sklearn_digits``, ``npz``, ``csv``, ``tfrecord`` or ``image_folder``."""
    split: Split = Split()
    """Training / validation / test split."""
    preprocessing: Preprocessing = Preprocessing()
    """Per-example preprocessing."""
    augmentation: Augmentation | None = None
    """Image augmentation for training; needs image-shaped inputs (height, width, channels)."""
    labels: list[SafeText] | None = None
    """Class names in label order, written to ``labels.txt``; ``0..N-1`` when omitted."""
    num_classes: Annotated[StrictInt, Field(gt=0, le=MAX_CLASSES)] | None = None
    """Number of classes (at most 100,000); taken from the source where it is known (digits: 10)."""
    external_locations: StrictBool = False
    """Allow ``data.source.path`` outside the spec's folder: ``s3://`` and ``gs://`` (read through fsspec:
    s3fs, gcsfs), ``file://`` URLs and absolute paths."""
    storage: DataStorage | None = None
    """Endpoint and credential references for ``s3://`` / ``gs://`` locations."""
    missing_values: MissingValues | None = None
    """Impute missing feature values (``{strategy: mean}``, ``median`` or ``{strategy: constant, value: 0}``)
    from the training split; without it a missing or non-finite feature value is an error."""
    memory_budget: KubeQuantity = "512Mi"
    """Memory a split may take when cached by its ``tf.data`` pipeline (``cache()``), as a Kubernetes quantity;
    a larger split is read from the source again each epoch."""
