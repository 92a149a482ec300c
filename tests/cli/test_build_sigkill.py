"""Atomic output: `tfspec build` killed with SIGKILL at random moments never leaves a half-written folder.

Each round rewrites every spec (alternating two contents, so each build really changes its outputs),
starts `tfspec build specs/`, and SIGKILLs it at a random moment — half the kills drawn over the whole run,
half over its last part, where the outputs are written. After each kill every output folder must hold a
complete ``manifest.json`` whose every file is there with its sha256, no other file, and content from
exactly one of the two versions of its spec. A final build must then succeed, pass ``--check`` and leave no
staging folder behind.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from tfspec.compiler.pipeline import compile_spec

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "deploy.yaml"
SPECS = 16
KILLS = 64


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

    write_variant(0)
    started = time.monotonic()
    assert build(tmp_path).wait(timeout=120) == 0
    duration = time.monotonic() - started

    kills = changed_while_killed = staging_seen = rounds = 0
    previous = {name: verify_output(tmp_path / "out" / name) for name in names}
    while kills < KILLS and rounds < KILLS * 3:
        rounds += 1
        write_variant(rounds % 2)
        delay = rng.uniform(0.0, duration * 1.1) if rounds % 2 else rng.uniform(duration * 0.5, duration * 1.05)
        process = build(tmp_path)
        time.sleep(delay)
        process.kill()
        if process.wait(timeout=60) == -9:
            kills += 1
        current = {}
        for name in names:
            folder = tmp_path / "out" / name
            current[name] = verify_output(folder)
            assert current[name] in shas[name]
        if current != previous and process.returncode == -9:
            changed_while_killed += 1
        staging_seen += any(p.name.endswith(".tmp") for p in (tmp_path / "out").iterdir())
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
    print(f"{kills} kills in {rounds} rounds; {changed_while_killed} mid-write; staging seen {staging_seen} times")
