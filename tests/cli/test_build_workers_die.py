"""A folder build SIGKILLed while its workers compile takes its workers with it (they would otherwise live on,
reparented to init, holding the build's stdout and stderr open: a reader of its output would wait forever)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "deploy.yaml"
SPECS = 300

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process state from /proc (Linux)")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == pid:
                found.add(int(entry))
    return found


def running(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")  # a zombie holds no files open


def test_sigkilled_folder_build_leaves_no_worker_behind(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    text = DIGITS.read_text("utf-8")
    for i in range(SPECS):
        (specs / f"m-{i:03d}.yaml").write_text(text.replace("name: digits ", f"name: m-{i:03d} ", 1), "utf-8")
    process = subprocess.Popen([sys.executable, "-m", "tfspec", "build", "specs", "--out", "out", "-j", "2"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and process.poll() is None:  # the pool is up: the workers are compiling
            assert time.monotonic() < deadline, "no worker started"
            workers = children(process.pid)
            time.sleep(0.005)
        assert process.poll() is None, "the build ended before the kill; raise SPECS"
        time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL

        outputs: list[bytes] = []
        reader = threading.Thread(target=lambda: outputs.extend([process.stdout.read(), process.stderr.read()]),
                                  daemon=True)
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "the killed build's stdout/stderr never reached end of file"

        deadline = time.monotonic() + 5
        while any(running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if running(pid)], "pool workers outlived the killed build"
    finally:
        for pid in workers:  # only the workers of the build this test started
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
