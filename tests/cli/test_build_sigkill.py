"""Atomic output: `tfspec build` killed with SIGKILL at random moments never leaves a half-written folder.

Each round rewrites every spec (alternating two contents, so each build really changes its outputs),
starts `tfspec build specs/`, and SIGKILLs it at a random moment: a third of the kills at a moment drawn over
the whole run (as measured beforehand), a third 0-50 ms after the build's first staging tree appears (the
new trees are being written), a third 0-5 ms after the first output folder was exchanged (the swaps and the
deletion of the old trees). After each kill every output folder must hold a
complete ``manifest.json`` whose every file is there with its sha256, no other file, and content from
exactly one of the two versions of its spec. A final build must then succeed, pass ``--check`` and leave no
staging folder behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from tfspec.compiler.pipeline import compile_spec

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "deploy.yaml"
SPECS = 6
KILLS = 60


def spec_text(name: str, variant: int) -> str:
    text = DIGITS.read_text("utf-8")
    return text.replace("name: digits ", f"name: {name} ", 1).replace("replicas: 2,", f"replicas: {2 + variant},", 1)


def verify_output(folder: Path) -> str:
    """Check one output folder against its manifest; return the spec sha256 its plan was built from."""
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    listed = manifest["files"]
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert on_disk == set(listed) | {"manifest.json"}, f"{folder}: files differ from the manifest"
    for rel, digest in listed.items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == digest, f"{folder}/{rel}: sha256 mismatch"
    return json.loads((folder / "plan.json").read_text("utf-8"))["spec"]["sha256"]


def build(cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tfspec", "build", "specs", "--out", "out", "-j", "2"], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkilled_builds_leave_complete_outputs(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    names = [f"model-{i:02d}" for i in range(SPECS)]
    specs = tmp_path / "specs"
    specs.mkdir()
    versions = {name: [spec_text(name, 0), spec_text(name, 1)] for name in names}
    shas = {name: [compile_spec(f"{name}.yaml", text=t).plan.spec_sha256 for t in texts] for name, texts in versions.items()}
    assert all(a != b for a, b in shas.values())

    def write_variant(variant: int) -> None:
        for name in names:
            (specs / f"{name}.yaml").write_text(versions[name][variant], "utf-8")

    durations = []
    for variant in (0, 1, 0):  # calibrate: how long a build that rewrites every output takes here
        write_variant(variant)
        started = time.monotonic()
        assert build(tmp_path).wait(timeout=120) == 0
        durations.append(time.monotonic() - started)
    duration = sorted(durations)[1]

    kills = changed_while_killed = staging_seen = rounds = 0
    previous_staging: set[str] = set()
    previous = {name: verify_output(tmp_path / "out" / name) for name in names}
    while (kills < KILLS or changed_while_killed < 3) and rounds < KILLS * 3:
        rounds += 1
        write_variant(rounds % 2)
        out = tmp_path / "out"
        before = {p.name for p in out.iterdir()}
        inodes = {name: os.stat(out / name).st_ino for name in names}
        process = build(tmp_path)
        started = time.monotonic()
        mode = rounds % 3
        if mode == 0:  # a moment anywhere in the run
            delay = rng.uniform(0.0, duration)
        elif mode == 1:  # while the new trees are being written: 0-50 ms after the first staging tree appears
            while process.poll() is None and not any(n.endswith(".tmp") for n in set(os.listdir(out)) - before):
                time.sleep(0.002)
                assert time.monotonic() - started < 120
            delay = time.monotonic() - started + rng.uniform(0.0, 0.05)
        else:  # while outputs are being swapped: 0-5 ms after the first output folder was exchanged
            while process.poll() is None and all(os.stat(out / n).st_ino == inodes[n] for n in names):
                time.sleep(0.002)
                assert time.monotonic() - started < 120
            delay = time.monotonic() - started + rng.uniform(0.0, 0.005)
        try:
            assert process.wait(timeout=max(0.0, delay - (time.monotonic() - started))) == 0
            if mode == 0:  # finished before the kill moment: aim the next kills earlier
                durations.append(time.monotonic() - started)
                duration = sorted(durations[-5:])[len(durations[-5:]) // 2]
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = process.wait(timeout=60)
            assert returncode in (0, -9)  # 0: it finished between the timeout and the kill
            kills += returncode == -9
        current = {}
        for name in names:
            folder = tmp_path / "out" / name
            current[name] = verify_output(folder)
            assert current[name] in shas[name]
        if current != previous and process.returncode == -9:
            changed_while_killed += 1
        staging = {p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")}
        staging_seen += bool(staging - previous_staging)  # this kill landed while a tree was being written
        previous_staging = staging
        leftovers = [p for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")]
        assert sorted(p.name for p in leftovers) == names
        previous = current

    assert kills >= KILLS, f"only {kills} of {rounds} builds were still running when killed"
    assert changed_while_killed > 0, "no kill landed after a build had started replacing outputs"
    write_variant(0)
    assert build(tmp_path).wait(timeout=120) == 0
    for name in names:
        assert verify_output(tmp_path / "out" / name) == shas[name][0]
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")], "staging left behind"
    check = subprocess.run([sys.executable, "-m", "tfspec", "build", "specs", "--out", "out", "--check"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    print(f"{kills} kills in {rounds} rounds; {changed_while_killed} after outputs were replaced, "
          f"{staging_seen} while a staging tree was being written")
