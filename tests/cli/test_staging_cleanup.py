"""What killed builds and runs leave (staging folders, temporary files) is removed by the next build or run,
whatever the timing: also when every spec is cached (nothing is written), when the dead process's id now
belongs to another process, and never while the owner still runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfspec.base.processes import owner_alive, owner_token

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "deploy.yaml"
TFSPEC = [sys.executable, "-m", "tfspec"]
LINUX = os.path.isdir("/proc/self")


def spec_text(name: str) -> str:
    return DIGITS.read_text("utf-8").replace("name: digits ", f"name: {name} ", 1)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def staging(folder: Path, name: str, owner: str, suffix: str = "abc_1234") -> Path:
    path = folder / f".{name}.{owner}.{suffix}.tmp"
    path.mkdir()
    (path / "plan.json").write_text("{}")
    return path


def test_owner_of_a_staging_folder() -> None:
    assert owner_alive(owner_token())
    assert not owner_alive(f"{dead_pid()}-1")
    assert not owner_alive(str(dead_pid()))  # a name from before start times were recorded: the pid decides
    if LINUX:  # a live pid with another start time: the id was reused by an unrelated process
        assert not owner_alive(f"{os.getpid()}-{int(owner_token().split('-')[1]) + 1}")
        assert not owner_alive(f"1-{int(owner_token().split('-')[1]) + 1}")


def test_a_cached_folder_build_removes_what_dead_builds_left(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    for name in ("model-00", "model-01"):
        (tmp_path / "specs" / f"{name}.yaml").write_text(spec_text(name))
    first = subprocess.run([*TFSPEC, "build", "specs", "--out", "out"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "out"
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        start = Path(f"/proc/{live.pid}/stat").read_text().rsplit(")", 1)[1].split()[19] if LINUX else ""
        live_owner = f"{live.pid}-{start}" if LINUX else str(live.pid)
        dead = [staging(out, "model-00", f"{dead_pid()}-{12345}"),
                staging(out, "model-01", str(dead_pid())),  # the old name: pid only
                staging(out, "gone-spec", f"{dead_pid()}-7")]  # an output no spec writes any more
        cache_temp = out / f".tfspec-build-cache.json.{dead_pid()}-3.zz_9.tmp"
        cache_temp.write_text("{")
        dead.append(cache_temp)
        if LINUX:  # pid alive but another process: the test runner is no build started at tick 1
            dead.append(staging(out, "model-00", f"{os.getpid()}-1", "reused_1"))
        kept = staging(out, "model-01", live_owner, "live_123")
        second = subprocess.run([*TFSPEC, "build", "specs", "--out", "out", "--json"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        statuses = [spec["status"] for spec in json.loads(second.stdout)["specs"]]
        assert statuses == ["cached", "cached"]  # nothing written: the clean-up does not depend on writing
        assert [p.name for p in dead if p.exists()] == []
        assert kept.is_dir(), "the staging folder of a live build was removed"
    finally:
        live.communicate(timeout=30)


def test_a_run_killed_while_swapping_dist_leaves_a_folder_the_next_run_removes(tmp_path: Path) -> None:
    """The dist staging folder carries its owner (a kill during the copy or the swap left an anonymous
    ``.<name>.<random>.tmp`` no later run removed); the next run's ``_write_dist`` removes it."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tfspec.base.outputs import Producer\n"
        "from tfspec.runtime.executor import _write_dist\n"
        "def fill(staging):\n"
        "    (staging / 'model.bin').write_bytes(b'x' * 1000)\n"
        "    print(staging.name, flush=True)\n"
        "    time.sleep(60)\n"
        "_write_dist(Path(sys.argv[1]), fill, Producer('dist', 'digits'))\n"
    )
    dist = tmp_path / "dist" / "digits"
    process = subprocess.Popen([sys.executable, "-c", code, str(dist)], stdout=subprocess.PIPE, text=True)
    try:
        name = process.stdout.readline().strip()
        assert name.startswith(f".digits.{process.pid}")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (tmp_path / "dist" / name).is_dir()
    other = staging(tmp_path / "dist", "other-model", f"{dead_pid()}-5")  # another spec's: its own run cleans it
    # named by tfspec 0.1 (no owner): removed once stale, kept while it could still be a live run's
    old_unowned, fresh_unowned = tmp_path / "dist" / ".digits.k2uuc_46.tmp", tmp_path / "dist" / ".digits.a1b2c3d4.tmp"
    old_unowned.mkdir()
    fresh_unowned.mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(old_unowned, (two_hours_ago, two_hours_ago))

    from tfspec.base.outputs import Producer
    from tfspec.runtime.executor import _write_dist

    _write_dist(dist, lambda folder: (folder / "model.bin").write_bytes(b"y"), Producer("dist", "digits"))
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == sorted([other.name, fresh_unowned.name, "digits"])
    assert (dist / "model.bin").read_bytes() == b"y"
