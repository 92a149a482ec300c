"""How `tfspec watch` turns file events into rebuilds (``SpecWatcher._rebuild_burst``), in process.

A save is compiled at its first event (the leading edge), not after the debounce; events that come later
in the burst are rebuilt once the file has been quiet for the debounce (the trailing edge); a save that
does not compile on the leading edge (an editor still writing it) is reported only on the trailing edge.
The event queue is replaced by one that records each wait for quiet and returns at once, so the order of
"wrote the output" and "waited for quiet" is checked without timing anything.
"""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import pytest

from tfspec.compiler.pipeline import compile_spec
from tfspec.io.watch import SpecWatcher

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "deploy.yaml"


def spec_text(replicas: int) -> str:
    return DIGITS.read_text("utf-8").replace("name: digits ", "name: solo ", 1).replace(
        "replicas: 2,", f"replicas: {replicas},", 1)


class QuietQueue(queue.Queue):
    """An event queue whose waits for quiet return at once (nothing more came), each one logged."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def get(self, block: bool = True, timeout: float | None = None):  # type: ignore[override]
        if not block:
            return super().get(block=False)
        self.log.append("waited")
        return super().get(block=False)  # raises queue.Empty unless an event was put


def steps(log: list[str]) -> list[str]:
    """The log as steps: "wrote" for an output written, "waited" for a wait for quiet, other lines as they are."""
    return ["wrote" if line.startswith("deploy.yaml -> out: ") else line for line in log]


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # lines name files relative to the current folder


def watcher_of(tmp_path: Path, log: list[str]) -> tuple[SpecWatcher, Path]:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(spec_text(2))
    watcher = SpecWatcher(spec, Path("out"), None, echo=log.append, echo_error=log.append, debounce=5.0,
                          max_wait=10.0)
    watcher._rebuild_one(str(spec))  # the initial build
    log.clear()
    watcher._events = QuietQueue(log)
    return watcher, spec


def test_a_save_is_written_before_the_debounce_is_waited(tmp_path: Path) -> None:
    log: list[str] = []
    watcher, spec = watcher_of(tmp_path, log)
    spec.write_text(spec_text(3))
    watcher._rebuild_burst([(str(spec), False, time.monotonic())])
    assert steps(log) == ["wrote", "waited"], log
    assert watcher.rebuilds == 2


def test_an_event_later_in_the_burst_is_rebuilt_on_the_trailing_edge(tmp_path: Path) -> None:
    log: list[str] = []
    watcher, spec = watcher_of(tmp_path, log)
    spec.write_text(spec_text(3))
    original_echo = watcher.echo

    def echo(line: str) -> None:  # the editor saves again while the first save is being written
        original_echo(line)
        if watcher.rebuilds == 2:
            spec.write_text(spec_text(4))
            watcher._events.put((str(spec), False, time.monotonic()))

    watcher.echo = echo
    watcher._rebuild_burst([(str(spec), False, time.monotonic())])
    assert watcher.rebuilds == 3
    written = json.loads((tmp_path / "out" / "plan.json").read_text("utf-8"))["spec"]["sha256"]
    assert written == compile_spec("deploy.yaml", text=spec_text(4)).plan.spec_sha256  # the second save's
    assert steps(log) == ["wrote", "waited", "wrote"], log


def test_a_save_that_does_not_compile_is_reported_only_after_the_quiet_period(tmp_path: Path) -> None:
    log: list[str] = []
    watcher, spec = watcher_of(tmp_path, log)
    spec.write_text("api_version: tfspec/v1\nname: solo\nmodel: [\n")
    watcher._rebuild_burst([(str(spec), False, time.monotonic())])
    assert steps(log)[0] == "waited", log
    assert log[-1] == "deploy.yaml: 1 problem; keeping the last good output in out", log


def test_a_spec_missing_on_the_leading_edge_is_not_reported_removed_when_it_is_back(tmp_path: Path) -> None:
    log: list[str] = []
    watcher, spec = watcher_of(tmp_path, log)
    backup = tmp_path / "deploy.yaml~"
    spec.rename(backup)  # vim without backupcopy: the original renamed away, the new file written after

    def wait_then_write(block: bool = True, timeout: float | None = None):
        if block:
            log.append("waited")
            if not spec.exists():
                spec.write_text(spec_text(3))
                backup.unlink()
        raise queue.Empty

    watcher._events.get = wait_then_write  # type: ignore[method-assign]
    watcher._rebuild_burst([(str(spec), False, time.monotonic())])
    assert steps(log) == ["waited", "wrote"], log


def test_a_save_caught_half_way_is_written_at_its_next_event_not_after_the_quiet_period(tmp_path: Path) -> None:
    """An in-place save: the first event is the truncation (an empty file, left alone), the next one the
    write; the spec is compiled and written at that event, before any wait for quiet."""
    log: list[str] = []
    watcher, spec = watcher_of(tmp_path, log)
    spec.write_text("")
    events = watcher._events
    delivered: list[bool] = []

    def next_event(block: bool = True, timeout: float | None = None):
        if block:
            log.append("waited")
            raise queue.Empty
        if not delivered:  # the editor's write lands, and its event arrives
            delivered.append(True)
            spec.write_text(spec_text(3))
            return (str(spec), False, time.monotonic())
        raise queue.Empty

    events.get = next_event  # type: ignore[method-assign]
    events.empty = lambda: bool(delivered)  # type: ignore[method-assign]
    watcher._rebuild_burst([(str(spec), False, time.monotonic())])
    assert steps(log) == ["wrote", "waited"], log
    assert watcher.rebuilds == 2
