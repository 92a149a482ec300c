"""The compression stages' step kinds and params: one entry per technique (``compression[].kind``).

A technique's plan side is here and nowhere else in the plan: its params model (what its runtime step,
``tfspec.runtime.steps.<step kind>``, reads) and its :class:`~.kinds.StepKind` entry in :data:`STAGE_KINDS`
(the step-kind table takes them from here).
"""

from typing import Annotated, Literal, Union

from pydantic import Field

from .common import Params, StepKind
from .data import StorageParams
from .layers import LayerParams
from .params import TensorParams
from .training import FitParams

__all__ = ["StageParams", "PruneParams", "ClusterParams", "QatParams", "SelfTeacherParams", "SavedModelTeacherParams",
           "SpecTeacherModelParams", "SpecTeacherParams", "TeacherParams", "DistillParams", "STAGE_KINDS"]


class StageParams(TensorParams):
    """What every compression step shares."""

    index: int
    """Position in ``compression``: errors name ``compression[index]``."""
    stage: str
    """The stage kind as the spec says it (``quantization_aware``)."""
    fit: FitParams
    learning_rate: float
    """The fine-tuning rate: the stage's own, or the training optimizer's initial rate."""
    num_classes: int | None

    def named_layers(self) -> list[str]:
        """The model layers this stage names (checked against a builder's or a SavedModel's layers)."""
        return []

    def makes_new_model(self) -> bool:
        """The stages after this one work on a new model it makes (distill's student), not on the trained one."""
        return False


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

    def named_layers(self) -> list[str]:
        return list(self.skip_layers)


class ClusterParams(StageParams):
    number_of_clusters: int
    centroid_init: Literal["kmeans_plus_plus", "linear", "density_based", "random"]
    preserve_sparsity: bool
    skip_layers: list[str]
    fine_tune_epochs: int

    def named_layers(self) -> list[str]:
        return list(self.skip_layers)


class QatParams(StageParams):
    preserve: list[Literal["sparsity", "clusters"]]
    fine_tune_epochs: int


class SelfTeacherParams(Params):
    """The model this spec's ``train`` step trained (an input of the step)."""

    kind: Literal["self"]


class SavedModelTeacherParams(Params):
    kind: Literal["saved_model"]
    path: str
    """Relative to the plan root, or a location."""
    storage: StorageParams | None
    """In an object store: endpoint and credential variable names (never values)."""
    sha256: str | None
    """The folder's content digest (an external teacher is no step of this plan: it keeps the fingerprint
    honest); None when the inputs were not gathered."""


class SpecTeacherModelParams(Params):
    """The teacher spec's final model step, read from that spec's own cache."""

    step: str
    fingerprint: str


class SpecTeacherParams(Params):
    kind: Literal["spec"]
    path: str
    """The teacher spec, relative to the plan root."""
    final_model: SpecTeacherModelParams | None
    """None: the teacher spec did not compile (the step says so)."""


TeacherParams = Annotated[Union[SelfTeacherParams, SavedModelTeacherParams, SpecTeacherParams],
                          Field(discriminator="kind")]


class DistillParams(StageParams):
    teacher: TeacherParams
    student: list[LayerParams]
    temperature: float
    alpha: float
    epochs: int

    def makes_new_model(self) -> bool:
        return True


STAGE_KINDS: tuple[StepKind, ...] = (
    StepKind("prune", PruneParams, makes_model=True, stage="prune"),
    StepKind("cluster", ClusterParams, makes_model=True, stage="cluster"),
    StepKind("qat", QatParams, makes_model=True, stage="quantization_aware"),
    StepKind("distill", DistillParams, makes_model=True, stage="distill"),
)
"""Every compression technique's step kind, in no particular order (``compression`` orders the stages)."""
