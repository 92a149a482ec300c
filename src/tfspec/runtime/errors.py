"""Runtime errors that point at the spec key that asked for the failing thing.

A step raises ``StepError(("data", "source", "label_column"), "no column 'label' in data/train.csv")``;
the executor calls :meth:`StepError.locate` with the spec's source document so the message reads
``deploy.yaml:12:5: data.source.label_column: no column 'label' in data/train.csv`` (exit 2).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from tfspec.base.errors import EXIT_ERROR, TfspecError, format_path

__all__ = ["StepError", "DataError", "ModelError", "StepFailed", "Locator", "reported_as_step_errors"]

KeyPath = tuple[str | int, ...]
# key path → "file:line:col" of that key in the spec (None when unknown): the runtime never reads the spec,
# whoever starts it (the CLI) says where keys are.
Locator = Callable[[KeyPath], "str | None"]


class StepError(TfspecError):
    """A runtime problem caused by the spec or its inputs (not a bug): printed as one line, exit 2."""

    exit_code = EXIT_ERROR

    def __init__(self, path: KeyPath, message: str, hint: str | None = None) -> None:
        self.path = tuple(path)
        self.message = message
        self.hint = hint
        self.location: str | None = None
        super().__init__(self._text())

    def _text(self) -> str:
        text = f"{format_path(self.path)}: {self.message}"
        if self.location:
            text = f"{self.location}: {text}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def locate(self, locator: Locator | None) -> "StepError":
        """Prefix ``file:line:col`` of the key, as ``locator`` finds it."""
        if locator is not None and self.location is None:
            self.location = locator(self.path)
            self.args = (self._text(),)
        return self

    def __str__(self) -> str:
        return self._text()


class DataError(StepError):
    """Missing file, unknown column or feature, shape that does not match the model."""


class ModelError(StepError):
    """The model section cannot be built or loaded."""


class StepFailed(TfspecError):
    """A step raised something that is not a spec problem (its type and message are kept)."""


@contextlib.contextmanager
def reported_as_step_errors(step_id: str, locator: Locator | None) -> Iterator[None]:
    """Run one step's code: spec problems get their file position, anything else becomes a one-line
    :class:`StepFailed` (exit 2; the CLI prints the original traceback under ``TFSPEC_DEBUG=1``)."""
    try:
        yield
    except StepError as error:
        raise error.locate(locator) from None
    except (TfspecError, KeyboardInterrupt):
        raise
    except Exception as error:
        # TFSPEC_DEBUG=1 shows the traceback (the CLI prints the cause) but keeps the exit code
        hint = "" if os.environ.get("TFSPEC_DEBUG") else " (set TFSPEC_DEBUG=1 for a traceback)"
        raise StepFailed(f"step {step_id} failed: {type(error).__name__}: {error}{hint}") from error
