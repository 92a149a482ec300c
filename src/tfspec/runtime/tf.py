"""The one place the runtime imports TensorFlow: Keras 2 (``tf_keras``) selected first, logging quieted.

tfmot supports only Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is imported
anywhere in the process; every runtime module gets TensorFlow through :func:`import_tf`.

TensorFlow's C++ side (absl, oneDNN, the cuInit probe, the TFLite converter and interpreter) writes its log
straight to file descriptor 2, past Python's ``sys.stderr`` and past ``TF_CPP_MIN_LOG_LEVEL`` for messages
printed before absl is initialised. :func:`tensorflow_output` moves descriptor 2 to a log file while
TensorFlow runs, so a user sees tfspec's lines and Keras progress only.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TextIO

from tfspec.base.versions import RUNTIME_VERSIONS
from tfspec.base.atomic import remove_dead_staging, staging_prefix
from tfspec.base.errors import TfspecError

__all__ = ["import_tf", "tf_loaded", "reset_random_state", "RuntimeVersionError", "installed_versions", "check_versions",
           "tensorflow_output", "TENSORFLOW_LOG"]

TENSORFLOW_LOG = Path("logs") / "tensorflow.log"
"""Where ``tfspec run`` keeps TensorFlow's own messages, relative to the folder holding the step cache
(``.tfspec/logs/tensorflow.log`` beside the spec by default)."""


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


def reset_random_state(seed: int = 0) -> None:
    """Seed Python's, NumPy's and TensorFlow's global generators (and TensorFlow's op-seed counter) as a
    fresh process would have them after seeding: what a step draws never depends on earlier steps."""
    _, keras = import_tf()
    keras.utils.set_random_seed(seed)


_SCRATCH_LOG = "tfspec-tensorflow.log"


def tf_loaded() -> bool:
    """Whether TensorFlow is already imported in this process (loading it takes seconds)."""
    return "tensorflow" in sys.modules


def _writes_to_fd2(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def tensorflow_output(log_path: Path | None) -> Iterator[TextIO]:
    """Send file descriptor 2 to a log inside the block; yield a stream to the real stderr.

    The log becomes ``log_path`` when the block ends, replacing the previous run's, and only when something
    was written to it: a run that fails before TensorFlow starts (a spec error) leaves no file behind.
    Whatever writes to ``sys.stderr`` inside the block (Python warnings, absl's Python logging) goes to the
    log as well, so tfspec's own error lines must be written to the yielded stream. ``None`` redirects
    nothing (``--verbose``) and yields ``sys.stderr``.
    """
    if log_path is None:
        yield sys.stderr
        return
    with contextlib.suppress(FileNotFoundError):
        log_path.unlink()  # an old log would read as this run's
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = os.dup(2)
    if _writes_to_fd2(sys.stderr):
        real: TextIO = open(os.dup(saved), "w", encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                            errors="backslashreplace", buffering=1)
    else:  # sys.stderr is not the process's (click's test runner): keep writing to it
        real = sys.stderr
    # In the temporary folder (the log's own may not exist yet, and a spec error must not create it), named
    # with this process as owner: a run that is killed leaves it there, and the next run removes it.
    scratch = Path(tempfile.gettempdir())
    remove_dead_staging(scratch, _SCRATCH_LOG)
    handle, temporary = tempfile.mkstemp(prefix=staging_prefix(_SCRATCH_LOG), suffix=".tmp", dir=scratch)
    try:
        os.dup2(handle, 2)
        try:
            yield real
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
    finally:
        os.close(handle)
        os.close(saved)
        if real is not sys.stderr:
            real.close()
        if os.path.getsize(temporary):
            log_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(temporary, log_path)
        else:
            os.unlink(temporary)
