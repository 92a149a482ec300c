"""`tfspec watch` as a real subprocess: edits, atomic-rename saves, broken edits, new specs, Ctrl-C.

Every wait is bounded; the process is killed in a finaliser if a test fails half-way.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tfspec.compiler.pipeline import compile_spec

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "deploy.yaml"
WAIT = 30.0


def spec_text(name: str, replicas: int = 2) -> str:
    text = DIGITS.read_text("utf-8")
    return text.replace("name: digits ", f"name: {name} ", 1).replace("replicas: 2,", f"replicas: {replicas},", 1)


def spec_sha(plan: Path) -> str:
    return json.loads(plan.read_text("utf-8"))["spec"]["sha256"]


def sha(text: str) -> str:
    """The spec content sha256 that a build of ``text`` records in plan.json."""
    result = compile_spec("spec.yaml", text=text)
    assert result.plan is not None, result.diagnostics
    return result.plan.spec_sha256


def manifest(out_dir: Path) -> dict[str, str]:
    try:
        return json.loads((out_dir / "manifest.json").read_text("utf-8"))["files"]
    except FileNotFoundError:
        return {}


def rebuilt(watch: "Watch", spec: str, out: str, out_dir: Path, before: dict[str, str]) -> dict[str, str]:
    """Wait for the summary line of a rebuild and check its counts against the manifests before and after."""
    line = watch.wait_for(rf"^{re.escape(spec)} -> {re.escape(out)}: (\d+) changed, (\d+) added, (\d+) removed")
    after = manifest(out_dir)
    changed = sorted(p for p in set(after) & set(before) if after[p] != before[p])
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    counts = tuple(int(n) for n in re.search(r": (\d+) changed, (\d+) added, (\d+) removed", line).groups())
    assert counts == (len(changed), len(added), len(removed)), line
    assert (changed + added + removed)[0] in line and re.search(r"\(\d+ ms\)$", line)
    assert changed or added or removed
    return after


def atomic_save(path: Path, text: str) -> None:
    """What vim (backupcopy=no), VS Code's safe save and JetBrains do: write a temp file, rename it over."""
    temp = path.with_name(f".{path.name}.swp-{os.getpid()}")
    temp.write_text(text, "utf-8")
    os.replace(temp, path)


class Watch:
    """A running `tfspec watch` whose stdout and stderr lines are collected by a thread."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tfspec", "watch", *args], cwd=cwd, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = WAIT) -> str:
        """The next line matching ``pattern`` (regex); fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no line matching {pattern!r} within {timeout} s; lines so far:\n" + "\n".join(self.seen))
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def drain(self, quiet: float) -> list[str]:
        """Lines printed until ``quiet`` seconds pass without one."""
        out = []
        while True:
            try:
                out.append(self.lines.get(timeout=quiet))
            except queue.Empty:
                self.seen.extend(out)
                return out

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=WAIT)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=WAIT)


@pytest.fixture
def watches() -> Iterator[list[Watch]]:
    started: list[Watch] = []
    yield started
    for watch in started:
        watch.kill()


def test_watch_folder(tmp_path: Path, watches: list[Watch]) -> None:
    specs = tmp_path / "specs"
    (specs / "team").mkdir(parents=True)
    alpha, beta = specs / "alpha.yaml", specs / "team" / "beta.yaml"
    alpha.write_text(spec_text("alpha"))
    beta.write_text(spec_text("beta"))
    out = tmp_path / "build"
    watch = Watch(tmp_path, "specs", "--debounce-ms", "150")
    watches.append(watch)
    watch.wait_for(r"^initial build of specs: 2 specs: 2 built, 0 unchanged, 0 invalid")
    watch.wait_for(r"^watching specs \(2 specs\)")
    beta_inode = os.stat(out / "beta").st_ino
    files = manifest(out / "alpha")

    # an in-place write
    text = spec_text("alpha", replicas=3)
    alpha.write_text(text)
    files = rebuilt(watch, "specs/alpha.yaml", "build/alpha", out / "alpha", files)
    assert spec_sha(out / "alpha" / "plan.json") == sha(text)

    # an editor's atomic-rename save
    text = spec_text("alpha", replicas=4)
    atomic_save(alpha, text)
    files = rebuilt(watch, "specs/alpha.yaml", "build/alpha", out / "alpha", files)
    assert spec_sha(out / "alpha" / "plan.json") == sha(text)
    good = (out / "alpha" / "plan.json").read_text()

    # a broken edit: diagnostics, last good output kept; then the fix
    alpha.write_text(spec_text("alpha", replicas=4).replace("units: 128", "units: -1"))
    watch.wait_for(r"^specs/alpha.yaml:16:\d+: model.layers\[0\].units: ")
    watch.wait_for(r"^specs/alpha.yaml: 1 problem; keeping the last good output in build/alpha$")
    assert (out / "alpha" / "plan.json").read_text() == good
    text = spec_text("alpha", replicas=5)
    alpha.write_text(text)
    files = rebuilt(watch, "specs/alpha.yaml", "build/alpha", out / "alpha", files)
    assert spec_sha(out / "alpha" / "plan.json") == sha(text)

    # a burst of writes (an editor writing in several chunks) is one rebuild
    text = spec_text("alpha", replicas=6)
    with open(alpha, "w") as handle:
        for start in range(0, len(text), 400):
            handle.write(text[start:start + 400])
            handle.flush()
            time.sleep(0.005)
    files = rebuilt(watch, "specs/alpha.yaml", "build/alpha", out / "alpha", files)
    assert spec_sha(out / "alpha" / "plan.json") == sha(text)
    assert not [line for line in watch.drain(1.0) if "alpha" in line]

    # a new spec appears (written under a temporary name and renamed, as `cp` + `mv` or a git checkout do)
    gamma_text = spec_text("gamma")
    (specs / "team" / "gamma.tmp").write_text(gamma_text)
    os.rename(specs / "team" / "gamma.tmp", specs / "team" / "gamma.yaml")
    rebuilt(watch, "specs/team/gamma.yaml", "build/gamma", out / "gamma", {})
    assert spec_sha(out / "gamma" / "plan.json") == sha(gamma_text)

    # a new folder of specs moved in
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "delta.yaml").write_text(spec_text("delta"))
    os.rename(incoming, specs / "new")
    rebuilt(watch, "specs/new/delta.yaml", "build/delta", out / "delta", {})

    # a touch and a save without edits rebuild nothing; a comment edit is compiled, and written only when
    # the output changes (it does where a generated file records the spec file's own sha256)
    gamma_inode = os.stat(out / "gamma").st_ino
    os.utime(specs / "team" / "gamma.yaml")
    (specs / "team" / "gamma.yaml").write_text(gamma_text)
    assert not watch.drain(1.0)
    assert os.stat(out / "gamma").st_ino == gamma_inode
    before = manifest(out / "gamma")
    commented = gamma_text + "# a comment\n"
    compiled = compile_spec(specs / "team" / "gamma.yaml", text=commented).placed(out / "gamma")
    output_changes = {p: hashlib.sha256(t.encode()).hexdigest() for p, t in compiled.files.items()} != before
    (specs / "team" / "gamma.yaml").write_text(commented)
    if output_changes:
        rebuilt(watch, "specs/team/gamma.yaml", "build/gamma", out / "gamma", before)
    else:
        watch.wait_for(r"^specs/team/gamma.yaml -> build/gamma: no change \(\d+ ms\)$")
        assert os.stat(out / "gamma").st_ino == gamma_inode

    # a second spec with a taken name is refused, the first keeps its output
    (specs / "copy.yaml").write_text(spec_text("beta"))
    watch.wait_for(r"^specs/copy.yaml:\d+:\d+: name: spec name 'beta' is also used by specs/team/beta.yaml")
    assert os.stat(out / "beta").st_ino == beta_inode

    # a deleted spec is forgotten; its output stays
    (specs / "new" / "delta.yaml").unlink()
    watch.wait_for(r"^specs/new/delta.yaml: removed; its output build/delta is left in place")
    assert os.stat(out / "beta").st_ino == beta_inode, "beta was rewritten without a change"

    assert watch.interrupt() == 0
    assert watch.wait_for(r"^stopped watching$", timeout=5)
    assert "Traceback" not in "\n".join(watch.seen + watch.drain(0.2))
    assert not list(out.glob(".*.tmp")), "staging folders left behind"


def test_watch_single_spec_with_vim_style_save(tmp_path: Path, watches: list[Watch]) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(spec_text("solo"))
    watch = Watch(tmp_path, "deploy.yaml", "--out", "out")
    watches.append(watch)
    files = rebuilt(watch, "deploy.yaml", "out", tmp_path / "out", {})
    watch.wait_for(r"^watching deploy.yaml \(1 spec\)")

    # vim with `backupcopy=no`: the original is renamed to a backup, a new file written, the backup deleted
    for replicas in (3, 4):
        text = spec_text("solo", replicas)
        os.rename(spec, tmp_path / "deploy.yaml~")
        spec.write_text(text)
        (tmp_path / "deploy.yaml~").unlink()
        files = rebuilt(watch, "deploy.yaml", "out", tmp_path / "out", files)
        assert spec_sha(tmp_path / "out" / "plan.json") == sha(text)

    # other YAML files beside the spec are not this watch's business
    (tmp_path / "other.yaml").write_text(spec_text("other"))
    spec.write_text("api_version: tfspec/v1\nname: solo\n")
    watch.wait_for(r"^deploy.yaml:1:1: data: required key is missing$")
    watch.wait_for(r"^deploy.yaml: \d+ problems?; keeping the last good output in out$")
    assert not (tmp_path / "build").exists()
    assert watch.interrupt() == 0


def test_watch_missing_path_is_a_clean_error(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tfspec", "watch", "nope.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr


INPUTS_SPEC = """\
api_version: tfspec/v1
name: inputs
version: 1
data:
  source: {kind: npz, path: data/train.npz, features: x, labels: y}
  split: {validation: 0.1, test: 0.2, seed: 1}
model: {kind: builder, builder: "nets.small:build", input_shape: [4], output_activation: softmax}
training: {optimizer: {kind: adam}, loss: sparse_categorical_crossentropy, epochs: 1}
targets:
  - {kind: tf_serving, name: serving, kubernetes: {replicas: 1}}
"""


def _inputs_project(root: Path) -> None:
    import numpy as np

    (root / "data").mkdir(parents=True)
    np.savez(root / "data" / "train.npz", x=np.zeros((20, 4), np.float32), y=np.zeros(20, np.int64))
    (root / "nets").mkdir()
    (root / "nets" / "__init__.py").write_text("")
    (root / "nets" / "small.py").write_text("from helpers import width\n\n\ndef build():\n    return width()\n")
    (root / "helpers.py").write_text("def width():\n    return 8\n")
    (root / "deploy.yaml").write_text(INPUTS_SPEC)


def _agrees_with_check(cwd: Path, *args: str) -> None:
    check = subprocess.run([sys.executable, "-m", "tfspec", "build", *args, "--check"], cwd=cwd, capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("mode", ["file", "folder"])
def test_watch_rebuilds_when_an_input_the_plan_digests_changes(tmp_path: Path, watches: list[Watch], mode: str) -> None:
    """Data files, builder modules and the local modules they import are inputs of the plan: an edit moves the
    serving image tag, and the watch must write what `tfspec build --check` expects."""
    _inputs_project(tmp_path)
    args, check_args, display, out = (("deploy.yaml", "--out", "out"), ("deploy.yaml", "--out", "out"), "deploy.yaml",
                                      "out") if mode == "file" else ((".", "--out", "out"), (".", "--out", "out"),
                                                                     "deploy.yaml", "out/inputs")
    watch = Watch(tmp_path, *args)
    watches.append(watch)
    if mode == "file":
        files = rebuilt(watch, display, out, tmp_path / out, {})
    else:
        watch.wait_for(r"^initial build of \.: 1 specs: 1 built")
        files = manifest(tmp_path / out)
    watch.wait_for(r"^watching ")
    _agrees_with_check(tmp_path, *check_args)
    import numpy as np

    np.savez(tmp_path / "data" / "train.npz", x=np.ones((20, 4), np.float32), y=np.zeros(20, np.int64))
    files = rebuilt(watch, display, out, tmp_path / out, files)
    _agrees_with_check(tmp_path, *check_args)
    (tmp_path / "helpers.py").write_text("def width():\n    return 16\n")  # imported by the builder's module
    files = rebuilt(watch, display, out, tmp_path / out, files)
    _agrees_with_check(tmp_path, *check_args)
    assert watch.interrupt() == 0


@pytest.mark.parametrize("editor", ["broken first", "renamed away first"])
def test_watch_never_reports_a_save_caught_half_way(tmp_path: Path, watches: list[Watch], editor: str) -> None:
    """A save is compiled at its first event (the leading edge); if the file is then broken or missing
    because the editor is still writing, nothing is printed until the file has been quiet for the debounce."""
    spec = tmp_path / "deploy.yaml"
    spec.write_text(spec_text("solo"))
    watch = Watch(tmp_path, "deploy.yaml", "--out", "out", "--debounce-ms", "400")
    watches.append(watch)
    files = rebuilt(watch, "deploy.yaml", "out", tmp_path / "out", {})
    watch.wait_for(r"^watching deploy.yaml \(1 spec\)")
    text = spec_text("solo", 5)
    if editor == "broken first":  # an editor writing in two steps: half the file, then all of it
        spec.write_text("api_version: tfspec/v1\nname: solo\nmodel: [\n")
    else:  # the original renamed to a backup, the new file written a moment later
        os.rename(spec, tmp_path / "deploy.yaml~")
    time.sleep(0.05)
    spec.write_text(text)
    rebuilt(watch, "deploy.yaml", "out", tmp_path / "out", files)
    assert spec_sha(tmp_path / "out" / "plan.json") == sha(text)
    watch.drain(1.5)  # anything printed once the file is quiet
    assert not [line for line in watch.seen if re.search(r" problems?;|: removed|: error: ", line)], watch.seen
    assert watch.interrupt() == 0
