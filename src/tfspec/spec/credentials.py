"""Credentials by reference: the one ``credentials`` block of every object store a spec names.

``data.storage``, ``model.storage``, a teacher's ``storage``, ``targets[].model_store`` and ``workflow``
all take the same block. It holds names only, never a value: the names of the variables a tfspec process
reads the S3 key from, and the Kubernetes Secret the pods tfspec's manifests run get theirs from.
"""

import re
from typing import Annotated

from pydantic import StringConstraints, field_validator

from .base import DnsLabel, StrictModel

__all__ = ["Credentials", "looks_like_aws_key_id", "VariableName"]

VariableName = Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]

# AWS access key ids: a four-letter prefix naming the kind of key, then 16 upper-case letters and digits (AWS IAM
# User Guide, "Understanding unique ID prefixes"): a value, written where the name of a variable belongs.
_AWS_KEY_ID = re.compile(r"^(AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}$")


def looks_like_aws_key_id(value: str) -> bool:
    """True for an AWS access key id (a credential), where the name of a variable is expected."""
    return _AWS_KEY_ID.match(value) is not None


class Credentials(StrictModel):
    """Where an object store's credentials are: names only, never the values. The same block wherever a
    store is named (``data.storage``, ``model.storage``, ``model_store``, ``workflow``)."""

    access_key_id_env: VariableName = "AWS_ACCESS_KEY_ID"
    """Environment variable holding the S3 access key id, read by ``tfspec plan``/``run`` (and by pods that
    take the Secret as variables)."""
    secret_access_key_env: VariableName = "AWS_SECRET_ACCESS_KEY"
    """Environment variable holding the S3 secret access key."""
    kubernetes_secret: DnsLabel | None = None
    """Kubernetes Secret the generated pods take the store's credentials from (the section using the block
    says which keys it must hold); none when the pods reach the store another way (a service account bound
    to IRSA or Workload Identity)."""

    @field_validator("access_key_id_env", "secret_access_key_env")
    @classmethod
    def _a_name_not_a_key(cls, value: str) -> str:
        if looks_like_aws_key_id(value):
            raise ValueError("this is an AWS access key id, not the name of the variable that holds it: remove it "
                             "from the spec (rotate the key if it was committed) and name the variable, such as "
                             "AWS_ACCESS_KEY_ID")
        return value
