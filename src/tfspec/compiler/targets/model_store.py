"""Model store: the plan's ``upload`` step of a target that serves from object storage, and the store's rule.

The runtime (``tfspec.runtime.steps.upload``) does the upload; this module only says what to upload
where. Which versions the store must hold before anything is pushed (a label on a version the store lacks
would crash-loop every serving pod) and how versions are laid out are the serving kind's to say.
"""

from __future__ import annotations

from typing import Any

from tfspec.base.errors import Diagnostic
from tfspec.plan import UploadParams
from tfspec.spec.loader import KeyPath
from tfspec.spec.targets import ModelStore

from ..resolve import ResolvedSpec

__all__ = ["upload_params", "store_endpoint_is_s3", "store_credentials_name_a_secret", "secret_key",
           "earlier_secret_spelling"]


def upload_params(resolved: ResolvedSpec, target: Any, model_dir: str, required_versions: list[int],
                  pinned: bool) -> UploadParams:
    """Parameters of the ``upload`` step of ``target`` (a kind with a ``model_store``); no credentials,
    only the names of the variables that hold them."""
    store = target.model_store
    assert store is not None
    return UploadParams(
        base_path=store.base_path,
        endpoint_url=store.endpoint_url,
        region=store.region,
        keep_versions=store.keep_versions,
        version=resolved.spec.version,
        model_dir=model_dir,
        required_versions=required_versions,
        key_path=["targets", resolved.spec.targets.index(target), "model_store"],
        pinned=pinned,
    )


def store_endpoint_is_s3(r: ResolvedSpec, index: int, target: Any) -> list[Diagnostic]:
    """An ``endpoint_url`` only makes sense for an S3-compatible store (a rule of every kind with a store)."""
    store = target.model_store
    if store is None or not store.endpoint_url or store.base_path.startswith("s3://"):
        return []
    return [r.diagnostic(("targets", index, "model_store", "endpoint_url"),
                         "endpoint_url is for S3-compatible stores, the base_path is not s3://",
                         "drop endpoint_url, or use an s3:// base_path")]


def store_credentials_name_a_secret(r: ResolvedSpec, index: int, target: Any) -> list[Diagnostic]:
    """The upload reads the storage client's own credentials (``tfspec.runtime.model_store``), so a model
    store's ``credentials`` block takes only ``kubernetes_secret``: a variable named here would be ignored."""
    store = target.model_store
    if store is None:
        return []
    return [r.diagnostic(("targets", index, "model_store", "credentials", field),
                         f"a model store does not read {field}: tfspec run uploads with the storage client's own "
                         "credentials (S3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance "
                         "role; GCS: the application default credentials)",
                         f"drop {field}; set those variables where tfspec run runs")
            for field in ("access_key_id_env", "secret_access_key_env") if field in store.credentials.model_fields_set]


def secret_key(index: int, store: ModelStore) -> KeyPath:
    """Where the spec names the store's Secret: ``credentials.kubernetes_secret``, or its earlier spelling."""
    if "credentials_secret" in store.model_fields_set:
        return ("targets", index, "model_store", "credentials_secret")
    return ("targets", index, "model_store", "credentials", "kubernetes_secret")


def earlier_secret_spelling(r: ResolvedSpec, index: int, target: Any) -> list[Diagnostic]:
    """A build warning: ``model_store.credentials_secret`` is read for one more release."""
    store = target.model_store
    if store is None or "credentials_secret" not in store.model_fields_set:
        return []
    return [r.diagnostic(secret_key(index, store),
                         "warning: credentials_secret is deprecated and will no longer be read in the next release",
                         f"write credentials: {{kubernetes_secret: {store.credentials_secret}}}")]
