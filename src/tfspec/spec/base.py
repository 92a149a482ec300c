"""Shared building blocks of the spec models: the strict base class and constrained name types."""

from typing import Annotated

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, StringConstraints

__all__ = [
    "StrictModel",
    "DnsLabel",
    "Identifier",
    "SafeText",
    "SAFE_TEXT_PATTERN",
    "RelativePath",
    "KubeQuantity",
    "ENDPOINT_URL_PATTERN",
    "ENDPOINT_URL_WITH_PATH_PATTERN",
    "EndpointUrl",
    "EndpointUrlWithPath",
    "MAX_INT",
    "MAX_FLOAT",
    "StrictInt",
    "FiniteFloat",
    "StrictBool",
    "PositiveInt",
    "NonNegativeInt",
    "Seed",
    "Probability",
    "PositiveFloat",
    "NonNegativeFloat",
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

# An http(s) endpoint of an object store: a host and an optional TCP port (1 to 65535), no credentials.
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
ENDPOINT_URL_PATTERN = rf"^https?://[A-Za-z0-9.-]+(:{_PORT})?/?$"
ENDPOINT_URL_WITH_PATH_PATTERN = rf"^https?://[A-Za-z0-9.-]+(:{_PORT})?(/[A-Za-z0-9._-]+)*/?$"
EndpointUrl = Annotated[str, StringConstraints(pattern=ENDPOINT_URL_PATTERN)]
EndpointUrlWithPath = Annotated[str, StringConstraints(pattern=ENDPOINT_URL_WITH_PATH_PATTERN)]

# Kubernetes resource quantity (e.g. "500m", "2", "4Gi").
KubeQuantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")]

# Numbers. Every int and float field of the spec is one of the types below, or StrictInt/FiniteFloat with
# its own Field(ge/gt=..., le/lt=...): strict (a YAML boolean, a quoted "40" or a float is not an int;
# an int is fine where a float is asked), finite, and bounded above (tests/spec/test_numeric_fields.py
# checks every field). The loader already reads only plain decimal numbers (no 0x28, 4_0, 1:30, .inf).
MAX_INT = 2**31 - 1
"""Largest value of an unbounded-looking int field: TensorFlow, Kubernetes and protobuf counts are int32."""
MAX_FLOAT = 1e9
"""Largest value of a float field without a natural bound (learning rates, sizes, regularisation)."""

StrictInt = Annotated[int, Strict()]
"""An int, not a bool, str or float. Give it bounds: ``Annotated[StrictInt, Field(ge=1, le=100)]``."""
FiniteFloat = Annotated[float, Strict(), AllowInfNan(False)]
"""A finite float (an int is accepted), not a bool or str. Give it bounds like StrictInt."""

StrictBool = Annotated[bool, Strict()]
"""``true`` or ``false``: not 1, "yes" or "on" (pydantic's lax bool would take them)."""

PositiveInt = Annotated[StrictInt, Field(gt=0, le=MAX_INT)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0, le=MAX_INT)]
Seed = Annotated[StrictInt, Field(ge=0, le=2**32 - 1)]
"""A random seed: NumPy and scikit-learn take 0 .. 2**32 - 1."""
Probability = Annotated[FiniteFloat, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[FiniteFloat, Field(gt=0.0, le=MAX_FLOAT)]
NonNegativeFloat = Annotated[FiniteFloat, Field(ge=0.0, le=MAX_FLOAT)]
