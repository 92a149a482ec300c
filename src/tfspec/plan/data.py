"""Where the examples come from, as the plan holds it: the data source (one model per kind), how an object
store is reached, how missing values are filled, the split and the preprocessing (``data`` of the resolved
spec). Paths are relative to the plan root unless they are locations (``s3://``, ``gs://``, ``file://``,
absolute)."""

from typing import Annotated, Literal, Union

from pydantic import Field

from .common import Params

__all__ = [
    "StorageParams",
    "SklearnDigitsSourceParams",
    "NpzSourceParams",
    "CsvSourceParams",
    "TfrecordFeatureParams",
    "TfrecordSourceParams",
    "ImageFolderSourceParams",
    "SourceParams",
    "MissingValuesParams",
    "SplitParams",
    "PreprocessingParams",
]


class StorageParams(Params):
    """How an object store (``s3://``, ``gs://``) is reached: an endpoint and the *names* of the environment
    variables holding the credentials (never their values), read by the process that needs them."""

    endpoint_url: str | None
    """None: AWS / Google."""
    access_key_id_env: str
    secret_access_key_env: str


class SklearnDigitsSourceParams(Params):
    kind: Literal["sklearn_digits"]


class NpzSourceParams(Params):
    kind: Literal["npz"]
    path: str
    features: str | dict[str, str]
    """The feature array's name, or each model input's array by input name."""
    labels: str


class CsvSourceParams(Params):
    kind: Literal["csv"]
    path: str
    label_column: str
    feature_columns: list[str] | dict[str, list[str]] | None
    """Feature columns in order, or each model input's columns by input name; None: every column but the label."""
    delimiter: str


class TfrecordFeatureParams(Params):
    dtype: Literal["float32", "int64"]
    shape: list[int]


class TfrecordSourceParams(Params):
    kind: Literal["tfrecord"]
    path: str
    """A file, a glob or an object-store glob."""
    features: dict[str, TfrecordFeatureParams]
    """By name; their concatenation order is the data step's ``feature_order`` (JSON objects sort their keys)."""
    label: str
    compression: Literal["none", "gzip", "zlib"]


class ImageFolderSourceParams(Params):
    kind: Literal["image_folder"]
    path: str
    image_size: list[int]
    """Height and width the images are resized to."""
    color_mode: Literal["grayscale", "rgb"]


SourceParams = Annotated[
    Union[SklearnDigitsSourceParams, NpzSourceParams, CsvSourceParams, TfrecordSourceParams, ImageFolderSourceParams],
    Field(discriminator="kind"),
]


class MissingValuesParams(Params):
    """How missing feature values are imputed from the training split."""

    strategy: Literal["mean", "median", "constant"]
    value: float | None
    """The fill value of ``constant`` (raw units); None for the others."""
    markers: list[str]
    """CSV cells that mean "missing"."""


class SplitParams(Params):
    validation: float
    test: float
    seed: int
    stratify: bool


class PreprocessingParams(Params):
    rescale: float | None
    normalize: bool
    reshape: list[int] | None
