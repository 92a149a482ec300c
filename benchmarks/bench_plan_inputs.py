"""`tfspec plan` on a ~1 GB image folder: the first call hashes every image, the second stats them.

Generates an image_folder data set into a temporary folder (default 10 classes x 2,000 PNG files of
128x128 random RGB pixels, ~49 KB each, ~1 GB), writes a spec that reads it, and times the real CLI
(`tfspec plan SPEC`, a new process each time) with an empty stat memo and again with the memo the first
call left. Also reports, from the compiler API, how many files each call read. The folder is deleted
afterwards. The images were just written, so the first call reads them from the OS page cache, not
from disk: on a cold cache it would be slower, which only makes the ratio larger.

``--same-bytes`` writes one PNG's bytes under every name (the issue's 200,000 images in seconds: what
`plan` costs depends on the number of files and their bytes, not on their pixels).

    python benchmarks/bench_plan_inputs.py [--classes 10] [--per-class 2000] [--size 128] [--same-bytes]
"""

from __future__ import annotations

import argparse
import os
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
    start = time.perf_counter()
    subprocess.run([str(tfspec), "plan", str(spec)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


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
        start = time.perf_counter()
        digests = gather_inputs(resolved, compile_teacher=compile_spec)
        seconds = time.perf_counter() - start
        s = digests.stats
        lines.append(f"inputs stage in-process, {label:10s}: {seconds:6.2f} s "
                     f"({s.files} files stat'ed, {s.hashed} read, {s.reused} from the memo)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=2000)
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (128: ~49 KB per PNG)")
    parser.add_argument("--same-bytes", action="store_true", help="one PNG's bytes under every file name")
    args = parser.parse_args()
    tfspec = Path(sys.executable).with_name("tfspec")
    work = Path(tempfile.mkdtemp(prefix="tfspec-bench-inputs-"))
    try:
        start = time.perf_counter()
        total = _generate(work / "images", args.classes, args.per_class, args.size, args.same_bytes)
        files = args.classes * args.per_class
        print(f"generated {files} PNG files, {total / 1e9:.2f} GB, in {time.perf_counter() - start:.0f} s")
        spec = work / "deploy.yaml"
        spec.write_text(SPEC.format(classes=args.classes), encoding="utf-8")
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
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
