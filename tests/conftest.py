"""Fixtures shared by every test folder (helpers live in ``tfspec_testing.py``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tfspec_testing import EXAMPLE, assert_golden


@pytest.fixture(scope="session", autouse=True)
def _session_temp_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Temporary files of the tests and of the processes they start go below pytest's own folder (which
    pytest prunes), not into /tmp: TensorFlow removes its autograph sources only at a normal exit, and
    several tests kill processes on purpose."""
    folder = tmp_path_factory.mktemp("tmp")
    before = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    yield folder
    if before is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before
    tempfile.tempdir = None


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """``golden(relative_path, actual_text)`` asserts against a golden file under tests/golden/."""

    def check(relative: str, actual: str) -> None:
        assert_golden(relative, actual, request)

    return check


@pytest.fixture
def example_spec() -> Path:
    return EXAMPLE
