"""The data step's source and what reading it needs: written into the data step's manifest, read back by
every step that streams the data (:mod:`tfspec.runtime.sources`, :mod:`tfspec.runtime.small_sources`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tfspec.plan import MissingValuesParams, SourceParams, StorageParams

__all__ = ["DataSource"]


class DataSource(BaseModel):
    """The data step's source and what reading it needs (kept in the data step's manifest).

    Attributes:
        source: the plan's source.
        storage: how its object store is reached (None: local, or the provider's defaults).
        missing_values: how missing feature values are imputed; None: a missing value is an error.
        label_values: a CSV label column of class names, in class-index order; None: numeric labels.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: SourceParams
    storage: StorageParams | None
    missing_values: MissingValuesParams | None
    label_values: list[str] | None

    @property
    def location(self) -> str:
        """The source's path, or its kind for a built-in source (for messages and example names)."""
        return getattr(self.source, "path", self.source.kind)
