"""tfspec.spec: the typed models of a tfspec spec, a position-keeping YAML loader and the JSON Schema.

This package imports only ``tfspec.base`` of tfspec's (errors and diagnostics, the tf_keras layer catalogue).
"""

from typing import TYPE_CHECKING

from tfspec.base.lazy import lazy_attributes

# Each name is imported from its module on first use (PEP 562): `tfspec build` on an up-to-date output,
# and every command that needs only the errors, never builds the validators of the ~100 spec models.
_LAZY: dict[str, str] = {
    "ClusterStage": "compression", "CompressionStage": "compression", "DistillStage": "compression",
    "PruneStage": "compression", "QuantizationAwareStage": "compression",
    "Data": "data",
    "API_VERSION": "document", "Environment": "document", "Spec": "document",
    "SourceDocument": "loader", "load_yaml": "loader", "load_yaml_text": "loader",
    "ModelSpec": "model",
    "spec_json_schema": "schema", "spec_json_schema_text": "schema",
    "GpuClusterTarget": "targets", "Target": "targets", "TfliteTarget": "targets", "TfServingTarget": "targets",
    "Training": "training",
    "Workflow": "workflow",
}

if TYPE_CHECKING:
    from .compression import ClusterStage, CompressionStage, DistillStage, PruneStage, QuantizationAwareStage
    from .data import Data
    from .document import API_VERSION, Environment, Spec
    from .loader import SourceDocument, load_yaml, load_yaml_text
    from .model import ModelSpec
    from .workflow import Workflow
    from .schema import spec_json_schema, spec_json_schema_text
    from .targets import GpuClusterTarget, Target, TfliteTarget, TfServingTarget
    from .training import Training

__all__ = [
    "API_VERSION",
    "ClusterStage",
    "CompressionStage",
    "Data",
    "DistillStage",
    "Environment",
    "GpuClusterTarget",
    "ModelSpec",
    "PruneStage",
    "QuantizationAwareStage",
    "SourceDocument",
    "Spec",
    "Target",
    "TfServingTarget",
    "TfliteTarget",
    "Training",
    "Workflow",
    "load_yaml",
    "load_yaml_text",
    "spec_json_schema",
    "spec_json_schema_text",
]


__getattr__ = lazy_attributes(__name__, {name: f".{module}" for name, module in _LAZY.items()})
