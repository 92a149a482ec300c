"""Fixtures shared by every test folder (helpers live in ``tfspec_testing.py``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tfspec_testing import EXAMPLE, assert_golden

# Under pytest-xdist (`make test`: `-n 2 --dist loadfile`) each test file runs whole on one worker, so its
# module-scoped fixtures (trained models, image builds, moto servers) are made once. tests/shipped/ is one
# unit: its session fixtures (the sdist and wheel, two venvs, the stand-in base image) would otherwise be made
# again on each worker that runs one of its files.
SHARED_SESSION_FOLDERS = ("tests/shipped/",)
# Units start longest first, so that the last ones to finish are short: the shipped tests, then the folders
# whose tests train with TensorFlow, then the rest (in collection order within each).
LONG_FIRST = ("tests/shipped/", "tests/runtime/", "tests/search/")


def work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its file, or one of SHARED_SESSION_FOLDERS."""
    path = nodeid.split("::", 1)[0]
    return next((folder for folder in SHARED_SESSION_FOLDERS if path.startswith(folder)), path)


def _start_rank(nodeid: str) -> int:
    return next((i for i, folder in enumerate(LONG_FIRST) if nodeid.startswith(folder)), len(LONG_FIRST))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker, the long units first (a stable sort: each file's own order is kept). Every
    worker sorts the same way, so their collections stay identical, as xdist requires."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: _start_rank(item.nodeid))


# Lines the workers' conftests want in the summary (``workeroutput["summary_lines"]``), shown by this process.
_WORKER_SUMMARY_LINES: list[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # noqa: ANN001
    _WORKER_SUMMARY_LINES.extend(getattr(node, "workeroutput", {}).get("summary_lines", []))


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    for line in _WORKER_SUMMARY_LINES:
        terminalreporter.write_line(line)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN001, ANN201
    """``--dist loadfile`` with the units of :func:`work_unit`, handed out in collection order (None:
    xdist's own scheduler for the other modes)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class UnitScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the long-first order, not xdist's most-tests-first
    return UnitScheduling(config, log)


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
