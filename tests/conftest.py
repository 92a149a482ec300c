"""Fixtures shared by every test folder (helpers live in ``tfspec_testing.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfspec_testing import EXAMPLE, assert_golden


@pytest.fixture
def golden(request: pytest.FixtureRequest):
    """``golden(relative_path, actual_text)`` asserts against a golden file under tests/golden/."""

    def check(relative: str, actual: str) -> None:
        assert_golden(relative, actual, request)

    return check


@pytest.fixture
def example_spec() -> Path:
    return EXAMPLE
