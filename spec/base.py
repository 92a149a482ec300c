"""Shared building blocks of the spec models: the strict base class and constrained name types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "StrictModel",
    "DnsLabel",
    "Identifier",
    "SafeText",
    "SAFE_TEXT_PATTERN",
    "RelativePath",
    "KubeQuantity",
    "Probability",
    "PositiveInt",
    "NonNegativeInt",
]


class StrictModel(BaseModel):
    """Base of every spec model: unknown keys rejected, values immutable.

    Field docstrings become JSON Schema descriptions: ``spec/schema.py`` reads them from the source when
    the schema is generated (pydantic's ``use_attribute_docstrings`` would parse every class's source at
    import time, a quarter of ``tfspec build``'s start-up).
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=False,
        regex_engine="python-re",
    )


# RFC 1123 label, as Kubernetes requires for object and Service names.
DnsLabel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
"""Lower-case letters, digits and '-', at most 63 characters, starting and ending alphanumeric."""

# Layer, input and output names: they end up in SavedModel signatures and generated clients.
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]

# Free text that is written into generated files: one line, no template syntax, no control characters,
# which includes C1 controls, Unicode line/paragraph separators (line breaks to YAML and JavaScript) and
# the bidirectional overrides that make text read differently from what it is.
SAFE_TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069{}$`\\]{0,200}$"
SafeText = Annotated[str, StringConstraints(pattern=SAFE_TEXT_PATTERN)]

# A path inside the project: relative, no '..', no shell or template metacharacters.
RelativePath = Annotated[
    str,
    StringConstraints(pattern=r"^(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_.*?\-/\[\]]{1,255}$"),
]

# Kubernetes resource quantity (e.g. "500m", "2", "4Gi").
KubeQuantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")]

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
