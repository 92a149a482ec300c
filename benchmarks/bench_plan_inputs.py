"""`tfspec plan` on a ~1 GB image folder: the first call hashes every image, the second stats them.

Generates an image_folder data set into a temporary folder (default 10 classes x 2,000 PNG files of
128x128 random RGB pixels, ~49 KB each, ~1 GB), writes a spec that reads it, and times the real CLI
(`tfspec plan SPEC`, a new process each time) with an empty stat memo and again with the memo the first
call left. Also reports, from the compiler API, how many files each call read. The folder is deleted
afterwards. The images were just written, so the first call reads them from the OS page cache, not
from disk: on a cold cache it would be slower, which only makes the ratio larger.

``--same-bytes`` writes one PNG's bytes under every name (the issue's 200,000 images in seconds: what
`plan` costs depends on the number of files and their bytes, not on their pixels).

``--before SRC`` (another checkout's ``src`` folder, e.g. ``/path/to/main/src``) also times the second call
side by side: that source and this one (picked by ``PYTHONPATH``, same interpreter), alternating for
``--rounds`` rounds, each with its own spec folder (its own memo) that links to the same images; wall time
and CPU time (user + sys of the process and its children, e.g. ``find``), medians.

    python benchmarks/bench_plan_inputs.py [--classes 10] [--per-class 2000] [--size 128] [--same-bytes]
                                           [--before SRC --rounds 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits" / "deploy.yaml"

SPEC = """\
api_version: tfspec/v1
name: images
version: 1
data:
  source: {{kind: image_folder, path: images, image_size: [32, 32], color_mode: rgb}}
  preprocessing: {{rescale: 0.00392156862745098}}
model:
  kind: sequential
  input_shape: [32, 32, 3]
  layers:
    - {{type: flatten}}
    - {{type: dense, units: {classes}, activation: softmax}}
targets: [{{kind: tflite, name: phone}}]
"""


def _generate(root: Path, classes: int, per_class: int, size: int, same_bytes: bool = False) -> int:
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    total = 0
    one = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8), mode="RGB").save(one, format="PNG")
    for c in range(classes):
        folder = root / f"class_{c:02d}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            path = folder / f"{i:05d}.png"
            if same_bytes:
                path.write_bytes(one.getvalue())
            else:
                pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels, mode="RGB").save(path, compress_level=1)
            total += path.stat().st_size
    return total


def _plan(tfspec: Path, spec: Path) -> float:
    return _timed_plan(tfspec, spec)[0]


def _timed_plan(tfspec: Path, spec: Path, source: str | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys of tfspec and its children) of one `tfspec plan SPEC`; ``source``:
    the ``src`` folder to run instead of the installed one."""
    environ = dict(os.environ)
    if source is not None:
        environ["PYTHONPATH"] = source
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([str(tfspec), "plan", str(spec)], check=True, stdout=subprocess.DEVNULL, env=environ)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _side_by_side(tfspec: Path, work: Path, spec_text: str, before: str, rounds: int) -> str:
    """The second call (memo warm) with ``before``'s source and this one, alternating; medians."""
    sources = {"before": before, "after": str(Path(__file__).resolve().parent.parent / "src")}
    specs = {}
    for label in sources:
        folder = work / label
        folder.mkdir()
        (folder / "images").symlink_to(work / "images")
        specs[label] = folder / "deploy.yaml"
        specs[label].write_text(spec_text, encoding="utf-8")
        memo = work / ".tfspec" / "input-digests.json"  # the per-file memo: no image is read again
        (folder / ".tfspec").mkdir()
        (folder / ".tfspec" / "input-digests.json").write_bytes(memo.read_bytes())
        _timed_plan(tfspec, specs[label], sources[label])  # the first call: writes its folder memo
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in sources}
    baseline: dict[str, list[tuple[float, float]]] = {label: [] for label in sources}
    load = [os.getloadavg()[0]]
    for _ in range(rounds):
        for label, source in sources.items():
            times[label].append(_timed_plan(tfspec, specs[label], source))
            baseline[label].append(_timed_plan(tfspec, EXAMPLE, source))
        load.append(os.getloadavg()[0])
    lines = [f"side by side, {rounds} rounds, 1-min load {min(load):.2f}-{max(load):.2f}: median wall / CPU"]
    for label in sources:
        wall = statistics.median(w for w, _ in times[label])
        cpu = statistics.median(c for _, c in times[label])
        base_wall = statistics.median(w for w, _ in baseline[label])
        base_cpu = statistics.median(c for _, c in baseline[label])
        lines.append(f"  {label:6s} ({sources[label]}): 2nd call {wall:5.2f} s / {cpu:5.2f} s CPU; "
                     f"digits example (no input files) {base_wall:5.2f} s / {base_cpu:5.2f} s CPU")
    return "\n".join(lines)


def _cpu_seconds() -> float:
    """User + sys CPU time of this process and its finished children (find)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _inputs_stage(spec: Path) -> str:
    """The inputs stage alone, in this process: memo deleted, then with the memo it wrote."""
    from tfspec.compiler.file_digests import TREES_FILE, memo_path
    from tfspec.compiler.inputs import gather_inputs
    from tfspec.compiler.pipeline import compile_spec

    resolved = compile_spec(spec).resolved
    memo_path(spec.parent).unlink()
    (memo_path(spec.parent).parent / TREES_FILE).unlink(missing_ok=True)  # the folder memo too
    time.sleep(1.05)  # the files' ctimes are old enough; only the memo is new
    lines = []
    for label in ("empty memo", "memo"):
        start, cpu = time.perf_counter(), _cpu_seconds()
        digests = gather_inputs(resolved, compile_teacher=compile_spec)
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
        s = digests.stats
        lines.append(f"inputs stage in-process, {label:10s}: {seconds:6.2f} s, {cpu:6.2f} s CPU "
                     f"({s.files} files stat'ed, {s.hashed} read, {s.reused} from the memo)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=2000)
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (128: ~49 KB per PNG)")
    parser.add_argument("--same-bytes", action="store_true", help="one PNG's bytes under every file name")
    parser.add_argument("--before", help="another checkout's src folder: time the 2nd call side by side with it")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of --before (default 5)")
    args = parser.parse_args()
    tfspec = Path(sys.executable).with_name("tfspec")
    work = Path(tempfile.mkdtemp(prefix="tfspec-bench-inputs-"))
    try:
        start = time.perf_counter()
        total = _generate(work / "images", args.classes, args.per_class, args.size, args.same_bytes)
        files = args.classes * args.per_class
        print(f"generated {files} PNG files, {total / 1e9:.2f} GB, in {time.perf_counter() - start:.0f} s")
        spec = work / "deploy.yaml"
        spec_text = SPEC.format(classes=args.classes)
        spec.write_text(spec_text, encoding="utf-8")
        time.sleep(1.05)  # out of the memo's racy window (files changed in the second it is written)
        print(f"load before: {os.getloadavg()[0]:.2f} (1-min), {os.cpu_count()} CPUs")
        baseline = _plan(tfspec, EXAMPLE)
        first = _plan(tfspec, spec)
        second = _plan(tfspec, spec)
        third = _plan(tfspec, spec)
        stage = _inputs_stage(spec)
        print(f"load after:  {os.getloadavg()[0]:.2f} (1-min)")
        print(f"tfspec plan, digits example (no input files): {baseline:6.2f} s")
        print(f"tfspec plan, empty memo:                      {first:6.2f} s")
        print(f"tfspec plan, memo (2nd):                      {second:6.2f} s")
        print(f"tfspec plan, memo (3rd):                      {third:6.2f} s")
        print(f"ratio first / second: {first / second:.1f}x")
        print(stage)
        if args.before:
            print(_side_by_side(tfspec, work, spec_text, args.before, args.rounds))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
