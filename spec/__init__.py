"""tfspec.spec: the typed models of a tfspec spec, a position-keeping YAML loader and the JSON Schema.

This package imports nothing else of tfspec's.
"""

from .compression import ClusterStage, CompressionStage, DistillStage, PruneStage, QuantizationAwareStage
from .data import Data
from .document import API_VERSION, Environment, Spec
from .errors import (
    EXIT_DIFF,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Diagnostic,
    SpecError,
    TfspecError,
    format_path,
)
from .loader import SourceDocument, load_yaml, load_yaml_text
from .model import ModelSpec
from .schema import spec_json_schema, spec_json_schema_text
from .targets import GpuClusterTarget, Target, TfliteTarget, TfServingTarget
from .training import Training

__all__ = [
    "API_VERSION",
    "ClusterStage",
    "CompressionStage",
    "Data",
    "Diagnostic",
    "DistillStage",
    "EXIT_DIFF",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "Environment",
    "GpuClusterTarget",
    "ModelSpec",
    "PruneStage",
    "QuantizationAwareStage",
    "SourceDocument",
    "Spec",
    "SpecError",
    "Target",
    "TfServingTarget",
    "TfliteTarget",
    "TfspecError",
    "Training",
    "format_path",
    "load_yaml",
    "load_yaml_text",
    "spec_json_schema",
    "spec_json_schema_text",
]
