"""The ``compression`` section: stages applied in order between training and export."""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import (
    FiniteFloat, Identifier, NonNegativeInt, PositiveFloat, PositiveInt, RelativePath, StrictBool, StrictInt,
    StrictModel,
)
from .data import DataLocation, DataStorage
from .model import Layer

__all__ = [
    "PruneStage",
    "ClusterStage",
    "QuantizationAwareStage",
    "SelfTeacher",
    "SavedModelTeacher",
    "SpecTeacher",
    "Teacher",
    "DistillStage",
    "CompressionStage",
]

FineTuneEpochs = Annotated[StrictInt, Field(ge=0, le=10000)]


class PruneStage(StrictModel):
    """Magnitude pruning (``tfmot.sparsity.keras.prune_low_magnitude``) with fine-tuning."""

    kind: Literal["prune"]
    """Stage kind."""
    target_sparsity: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.5
    """Fraction of weights set to zero at the end of the schedule."""
    initial_sparsity: Annotated[FiniteFloat, Field(ge=0.0, lt=1.0)] = 0.0
    """``polynomial_decay`` only: sparsity at ``begin_step``."""
    schedule: Literal["constant", "polynomial_decay"] = "polynomial_decay"
    """Pruning schedule: ``polynomial_decay`` raises sparsity from ``initial_sparsity`` to ``target_sparsity``
    over the fine-tuning steps; ``constant`` holds ``target_sparsity`` from ``begin_step`` on."""
    begin_step: NonNegativeInt = 0
    """Step at which pruning starts."""
    end_step: PositiveInt | None = None
    """Step at which the target is reached; derived from ``fine_tune_epochs`` × steps per epoch when omitted."""
    frequency: PositiveInt | None = None
    """Steps between mask updates; derived from the steps the stage runs when omitted (never the upstream 100)."""
    sparsity_m_by_n: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | None = None
    """Structured sparsity ``[m, n]``: at most m non-zero weights in every block of n (``[2, 4]``)."""
    skip_layers: list[Identifier] = []
    """Layer names left dense (e.g. the output layer)."""
    fine_tune_epochs: Annotated[StrictInt, Field(ge=1, le=10000)] = 2
    """Epochs of training with the pruning schedule."""
    learning_rate: PositiveFloat | None = None
    """Fine-tuning learning rate; the training optimizer's initial rate when omitted."""

    @model_validator(mode="after")
    def _steps_ordered(self) -> "PruneStage":
        if self.end_step is not None and self.end_step <= self.begin_step:
            raise ValueError("end_step must be greater than begin_step")
        if self.sparsity_m_by_n is not None and self.sparsity_m_by_n[0] >= self.sparsity_m_by_n[1]:
            raise ValueError("sparsity_m_by_n: m must be smaller than n (e.g. [2, 4])")
        return self


class ClusterStage(StrictModel):
    """Weight clustering (``tfmot.clustering.keras.cluster_weights``) with fine-tuning."""

    kind: Literal["cluster"]
    """Stage kind."""
    number_of_clusters: Annotated[StrictInt, Field(ge=2, le=256)] = 16
    """Distinct weight values per kernel."""
    centroid_init: Literal["kmeans_plus_plus", "linear", "density_based", "random"] = "kmeans_plus_plus"
    """How the cluster centroids are initialised (tfmot ``CentroidInitialization``)."""
    preserve_sparsity: StrictBool = False
    """Keep zeros of a preceding prune stage zero (sparsity-preserving clustering)."""
    skip_layers: list[Identifier] = []
    """Layer names left unclustered."""
    fine_tune_epochs: FineTuneEpochs = 2
    """Epochs of fine-tuning with clustering."""
    learning_rate: PositiveFloat | None = None
    """Fine-tuning learning rate; the training optimizer's initial rate when omitted."""


class QuantizationAwareStage(StrictModel):
    """Quantization-aware training (``quantize_model`` / ``quantize_apply``), optionally collaborative."""

    kind: Literal["quantization_aware"]
    """Stage kind."""
    preserve: list[Literal["sparsity", "clusters"]] = []
    """What earlier stages achieved and QAT keeps: ``[sparsity]`` (PQAT), ``[clusters]`` (CQAT), both (PCQAT)."""
    fine_tune_epochs: FineTuneEpochs = 2
    """Epochs of quantization-aware fine-tuning."""
    learning_rate: PositiveFloat | None = None
    """Fine-tuning learning rate; the training optimizer's initial rate when omitted."""

    @model_validator(mode="after")
    def _no_repeats(self) -> "QuantizationAwareStage":
        if len(set(self.preserve)) != len(self.preserve):
            raise ValueError("preserve lists an entry twice")
        return self


class SelfTeacher(StrictModel):
    """The model trained by this spec (before the student) teaches."""

    kind: Literal["self"]
    """Teacher kind."""


class SavedModelTeacher(StrictModel):
    """A SavedModel teaches."""

    kind: Literal["saved_model"]
    """Teacher kind."""
    path: DataLocation
    """SavedModel folder, relative to the spec file; or (with ``external_locations``) an ``s3://`` or ``gs://``
    folder (staged into a bounded local folder before loading), a ``file://`` URL or an absolute path."""
    external_locations: StrictBool = False
    """Allow ``path`` outside the spec's folder (as ``data.external_locations`` does for data)."""
    storage: DataStorage | None = None
    """Endpoint and credential references (variable names) for an ``s3://`` / ``gs://`` ``path``."""


class SpecTeacher(StrictModel):
    """The final model of another tfspec spec teaches (``tfspec run`` that spec first).

    The other spec is compiled with this one; its final model step (last compression stage, or
    ``train``) is read from its own cache, ``.tfspec/cache/`` beside it, and that step's fingerprint is
    part of the distill step's, so retraining the teacher re-runs the distillation.
    """

    kind: Literal["spec"]
    """Teacher kind."""
    path: RelativePath
    """Path of the other spec file, relative to this one; it must take the same (preprocessed) inputs."""


Teacher = Annotated[SelfTeacher | SavedModelTeacher | SpecTeacher, Field(discriminator="kind")]


class DistillStage(StrictModel):
    """Knowledge distillation: a smaller student learns from the teacher's softened outputs.

    loss = alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))
    """

    kind: Literal["distill"]
    """Stage kind."""
    teacher: Teacher | None = None
    """The teacher; the model trained in this spec when omitted is *not* assumed: say ``{kind: self}``."""
    student: Annotated[list[Layer], Field(min_length=1)] | None = None
    """Student layers (same input as the model; the last layer's units must match the classes)."""
    temperature: Annotated[FiniteFloat, Field(gt=0.0, le=100.0)] = 4.0
    """Softmax temperature T."""
    alpha: Annotated[FiniteFloat, Field(ge=0.0, le=1.0)] = 0.1
    """Weight of the hard-label loss."""
    epochs: Annotated[StrictInt, Field(ge=1, le=10000)] = 10
    """Student training epochs."""
    learning_rate: PositiveFloat | None = None
    """Student learning rate; the training optimizer's initial rate when omitted."""


CompressionStage = Annotated[
    PruneStage | ClusterStage | QuantizationAwareStage | DistillStage,
    Field(discriminator="kind"),
]
