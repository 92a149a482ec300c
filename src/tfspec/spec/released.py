"""A target's ``released`` model (the one serving now) and the gates that compare the candidate with it."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .base import MAX_FLOAT, FiniteFloat, NonNegativeFloat, PositiveInt, StrictBool, StrictModel

__all__ = [
    "RELEASED_PATH_PATTERN",
    "ReleasedPath",
    "StoreRelease",
    "DistRelease",
    "SavedModelRelease",
    "TfliteRelease",
    "Released",
    "ReleasedGates",
]

# A file or folder on this machine: relative to the spec file (inside its folder: no '..'), or, with
# ``external_locations``, a ``file://`` URL or an absolute path. Buckets are reached through ``model_store``.
RELEASED_PATH_PATTERN = (r"^((file://)?/(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_.\-/=]{1,1000}"
                         r"|(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_.\-/]{1,255})$")
ReleasedPath = Annotated[str, StringConstraints(pattern=RELEASED_PATH_PATTERN)]


class _Release(StrictModel):
    """What every kind of released model has."""

    allow_first_release: StrictBool = False
    """When no released model is found (an empty store, no version below this one, no such path yet), a
    ``vs_released`` gate is an error of the build (exit 2) unless this is true: the first release then ships
    with nothing to compare with, and the report says so."""


class StoreRelease(_Release):
    """The version serving now, from the target's ``model_store``: the newest complete version below the spec's
    ``version`` (a version is complete once its ``saved_model.pb`` is there), or the ``version`` named here.

    ``tfspec build`` lists the store (names, sizes and ETags or generations; nothing is downloaded) and the
    version found and its listing go into the plan, so the comparison re-runs exactly when the store's
    released version changes; ``tfspec run`` downloads that version and refuses it if its listing changed."""

    kind: Literal["model_store"]
    """Where the released model is: the target's ``model_store``."""
    version: PositiveInt | None = None
    """The released version; the newest complete version below the spec's ``version`` when omitted."""


class DistRelease(_Release):
    """The target's artifact in a previous dist folder (what ``tfspec run`` wrote, e.g. kept by CI): the
    SavedModel under ``<path>/<target>/models/<name>/<version>/`` (the highest version there), or the one
    ``.tflite`` file below ``<path>/<target>/`` (with the ``model_info.json`` beside it)."""

    kind: Literal["dist"]
    """Where the released model is: a dist folder."""
    path: ReleasedPath
    """The dist folder (``dist/<name>`` of an earlier run), relative to the spec file; or, with
    ``external_locations``, a ``file://`` URL or an absolute path."""
    external_locations: StrictBool = False
    """Allow ``path`` outside the spec's folder."""


class SavedModelRelease(_Release):
    """A released SavedModel folder (``saved_model.pb`` and ``variables/``), e.g. a copy of the version serving
    now. tf_serving and kserve targets."""

    kind: Literal["saved_model"]
    """Where the released model is: a SavedModel folder."""
    path: ReleasedPath
    """The SavedModel folder, relative to the spec file; or, with ``external_locations``, a ``file://`` URL or
    an absolute path."""
    external_locations: StrictBool = False
    """Allow ``path`` outside the spec's folder."""


class TfliteRelease(_Release):
    """A released ``.tflite`` file (the ``model_info.json`` beside it, when there, says its input contract).
    tflite targets."""

    kind: Literal["tflite"]
    """Where the released model is: a ``.tflite`` file."""
    path: ReleasedPath
    """The ``.tflite`` file, relative to the spec file; or, with ``external_locations``, a ``file://`` URL or an
    absolute path."""
    external_locations: StrictBool = False
    """Allow ``path`` outside the spec's folder."""


Released = Annotated[StoreRelease | DistRelease | SavedModelRelease | TfliteRelease, Field(discriminator="kind")]

GrowthPercent = Annotated[FiniteFloat, Field(ge=-100.0, le=MAX_FLOAT)]


class ReleasedGates(StrictModel):
    """Gates against the released model (the target's ``released``), both measured by ``tfspec run`` on the
    current test split with the same code: a candidate worse than what serves now fails the run (exit 1) and
    nothing is uploaded. Accuracy for classifiers, ``mae`` (mean absolute error) for regression; sizes and p95
    latencies of one example on this machine's CPU, the two models timed alternately."""

    max_accuracy_drop: Annotated[FiniteFloat, Field(ge=0.0, le=1.0)] | None = None
    """Largest allowed accuracy drop: released model's test accuracy − the candidate's (0 = not worse).
    Classifiers only."""
    min_accuracy_gain: Annotated[FiniteFloat, Field(ge=0.0, le=1.0)] | None = None
    """Smallest required accuracy gain: the candidate's test accuracy − the released model's. Classifiers only."""
    max_error_increase: NonNegativeFloat | None = None
    """Largest allowed error increase: the candidate's test mae − the released model's, in the label's units.
    Regression only."""
    min_error_decrease: NonNegativeFloat | None = None
    """Smallest required error decrease: the released model's test mae − the candidate's. Regression only."""
    max_size_growth_percent: GrowthPercent | None = None
    """Largest allowed size growth of the artifact in percent of the released one's (negative: it must shrink)."""
    max_latency_growth_percent: GrowthPercent | None = None
    """Largest allowed growth of the p95 latency of one example in percent of the released model's."""
