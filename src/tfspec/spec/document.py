"""The whole spec document and its environment overlays."""

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints

from .base import MAX_INT, DnsLabel, SafeText, StrictInt, StrictModel
from .compression import CompressionStage
from .data import Data
from .model import ModelSpec
from .search import Search
from .targets import Target
from .training import Training
from .workflow import Workflow

__all__ = ["API_VERSION", "ENVIRONMENT_NAME_PATTERN", "TargetOverlay", "Environment", "Spec"]

ENVIRONMENT_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
"""An environment overlay's name (``-e NAME``): it names files and folders (``<stem>.<NAME>.env.yaml``,
``build/<name>-<NAME>/``), so never a path."""

API_VERSION = "tfspec/v1"


class TargetOverlay(StrictModel):
    """Changes to one target, matched by ``name``; nested mappings are deep-merged into the target."""

    model_config = ConfigDict(extra="allow", frozen=True, regex_engine="python-re")

    name: DnsLabel
    """Name of the target this overlay changes (or adds, when it names a new target with a ``kind``)."""


class Environment(StrictModel):
    """An environment overlay (``tfspec build -e NAME``): deep-merged over the base spec."""

    version: Annotated[StrictInt, Field(ge=1, le=MAX_INT)] | None = None
    """Replaces the model version."""
    data: dict[str, Any] | None = None
    """Deep-merged into ``data``."""
    model: dict[str, Any] | None = None
    """Deep-merged into ``model``."""
    training: dict[str, Any] | None = None
    """Deep-merged into ``training``."""
    compression: list[dict[str, Any]] | None = None
    """Replaces the whole ``compression`` list."""
    targets: list[TargetOverlay] | None = None
    """Merged into ``targets`` by ``name``."""


class Spec(StrictModel):
    """A tfspec deployment spec: one model, how it is trained and compressed, and where it goes."""

    api_version: Literal["tfspec/v1"]
    """Spec format version; ``tfspec/v1``."""
    extends: str | list[str] | None = None
    """Base specs (paths relative to this file) deep-merged under this one, in order; see docs/standards.md.
    The compiler merges them before parsing, so a resolved spec never holds this key."""
    name: DnsLabel
    """Model name (DNS-1123 label): used for images, Kubernetes objects and the serving model name."""
    version: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)]
    """Model version: the TF Serving version directory."""
    description: SafeText | None = None
    """One-line description, written into generated files."""
    registry: Annotated[str, StringConstraints(
        pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")] | None = None
    """Registry prefix of the images built for this spec (``registry.example.com/ml``): a target's image is
    ``<registry>/<spec name>-<target name>`` unless it names its own. An organisation sets it once with a
    variable, ``registry: ${REGISTRY}``."""
    data: Data
    """Training data: the source of the examples, how they are split and preprocessed."""
    model: ModelSpec
    """The model: ``sequential``, ``functional``, ``builder``, ``saved_model`` or ``application`` (a backbone)."""
    training: "Training" = Training()
    """Training settings: optimizer, loss, metrics, epochs, early stopping and distribution."""
    compression: list[CompressionStage] = []
    """Compression stages applied in order: ``prune``, ``cluster``, ``quantization_aware``, ``distill``."""
    targets: Annotated[list[Target], Field(min_length=1)]
    """Deployment targets: ``tflite``, ``tf_serving``, ``gpu_cluster``, ``kserve``."""
    environments: dict[Annotated[str, StringConstraints(pattern=ENVIRONMENT_NAME_PATTERN)], Environment] = {}
    """Environment overlays, selected with ``-e NAME``."""
    search: Search | None = None
    """What ``tfspec search`` explores: spec values by key path, the objective and the budget."""
    workflow: Workflow | None = None
    """Run the whole plan on Kubernetes: an Argo Workflows WorkflowTemplate (``workflow/``), one pod per step,
    the step cache in a bucket. See docs/workflows.md."""
