"""The one place the runtime imports TensorFlow: Keras 2 (``tf_keras``) selected first, logging quieted.

tfmot supports only Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is imported
anywhere in the process; every runtime module gets TensorFlow through :func:`import_tf`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from types import ModuleType

from tfspec.compiler.versions import RUNTIME_VERSIONS
from tfspec.spec.errors import TfspecError

__all__ = ["import_tf", "RuntimeVersionError", "installed_versions", "check_versions"]


class RuntimeVersionError(TfspecError):
    """The installed TensorFlow stack is not the one the plan's fingerprints are pinned to."""


def installed_versions() -> dict[str, str | None]:
    """Installed version of every pinned runtime package (None when missing), plus ai-edge-litert."""
    versions: dict[str, str | None] = {}
    for package in (*RUNTIME_VERSIONS, "ai-edge-litert"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def check_versions() -> dict[str, str | None]:
    """Raise :class:`RuntimeVersionError` unless every pinned package has its pinned version."""
    versions = installed_versions()
    wrong = [f"{name} {versions[name] or 'missing'} (pinned {pinned})"
             for name, pinned in RUNTIME_VERSIONS.items() if versions[name] != pinned]
    if wrong:
        raise RuntimeVersionError(
            "the runtime needs the pinned TensorFlow stack: " + ", ".join(wrong)
            + "; install it with `pip install 'tfspec[runtime]'`")
    return versions


@functools.cache
def import_tf() -> tuple[ModuleType, ModuleType]:
    """Return ``(tensorflow, tf_keras)`` with Keras 2 selected; checks the pinned versions once."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    check_versions()
    import tensorflow as tf
    import tf_keras

    tf.get_logger().setLevel("ERROR")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with TensorFlow
        pass
    return tf, tf_keras
