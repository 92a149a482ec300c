"""Folder builds at scale: 500 generated specs (goals: cold build <= 5 s; one changed spec rebuilt <= 0.5 s).

Generates N variants of the digits spec (different names, layer widths, replica counts, targets) in a
temporary folder and times the real command line, `python -m tfspec build specs --out out`, as a user or
CI runs it (wall time, interpreter start-up included):

1. cold: no output, no cache;
2. no change: everything cached;
3. one changed spec (the other N-1 skipped by the input-hash cache);
4. --check of the whole folder (writes nothing; an unchanged spec whose output files still have the sha256
   their manifest lists is not compiled).

Step 3 is also timed in-process (`build_folder`, compiler already imported), which is what `tfspec watch`
and other long-lived callers pay.

    python benchmarks/bench_scale.py [--specs 500] [--jobs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits" / "deploy.yaml"


def spec_text(index: int, edit: int = 0) -> str:
    text = DIGITS.read_text("utf-8").replace("name: digits ", f"name: model-{index:04d} ", 1)
    text = text.replace("units: 128", f"units: {32 + index % 97}", 1)
    text = text.replace("replicas: 2,", f"replicas: {2 + (index + edit) % 5},", 1)
    # one cluster worker and the default strategy, so that the third without a cluster target stays valid
    # (multi_worker_mirrored needs a training target; a cluster job of several workers needs it)
    text = text.replace("distribution: {kind: multi_worker_mirrored}", "distribution: {kind: default}", 1)
    text = text.replace("    workers: 4\n", "    workers: 1\n", 1)
    if index % 3 == 0:  # a third without the training cluster target
        text = text[: text.index("  - kind: gpu_cluster")] + text[text.index("environments:"):]
    return text


CPU: list[float] = []


def timed(cwd: Path, *args: str) -> tuple[float, str]:
    """Wall time of one CLI run; its CPU time (user + sys, worker processes included) goes to CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "tfspec", *args], cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if result.returncode not in (0, 1):
        sys.exit(result.stdout[-2000:] + result.stderr[-2000:])
    return elapsed, result.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    jobs = ["-j", str(args.jobs)] if args.jobs else []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for index in range(args.specs):
            folder = root / "specs" / f"team-{index % 10}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"model-{index:04d}.yaml").write_text(spec_text(index))
        print(f"{args.specs} specs, {os.cpu_count()} CPUs, workers: {args.jobs or os.cpu_count()}, "
              f"load average {os.getloadavg()[0]:.1f} at start")
        cold, line = timed(root, "build", "specs", "--out", "out", *jobs)
        print(f"cold build (CLI wall):           {cold:6.2f} s   [{line}]   goal <= 5 s: {'met' if cold <= 5 else 'NOT met'}; CPU {CPU[-1]:.2f} s")
        warm, line = timed(root, "build", "specs", "--out", "out", *jobs)
        print(f"no change (CLI wall):            {warm:6.2f} s   [{line}]   CPU {CPU[-1]:.2f} s")
        one: list[float] = []
        for edit in range(1, 6):
            (root / "specs" / "team-7" / "model-0007.yaml").write_text(spec_text(7, edit))
            elapsed, line = timed(root, "build", "specs", "--out", "out", *jobs)
            one.append(elapsed)
        print(f"one changed spec (CLI wall):     {statistics.median(one):6.2f} s   (median of 5) [{line}]   "
              f"goal <= 0.5 s: {'met' if statistics.median(one) <= 0.5 else 'NOT met'}; CPU {statistics.median(CPU[-5:]):.2f} s")
        check, line = timed(root, "build", "specs", "--out", "out", "--check", *jobs)
        print(f"--check of the folder (CLI wall): {check:5.2f} s   [{line}]   CPU {CPU[-1]:.2f} s")

        os.chdir(root)
        from tfspec.io.batch import build_folder

        build_folder("specs", "out", jobs=args.jobs)  # warm: imports done, page cache hot
        inproc: list[float] = []
        inproc_cpu: list[float] = []
        for edit in range(6, 16):
            (root / "specs" / "team-3" / "model-0003.yaml").write_text(spec_text(3, edit))
            started, cpu = time.perf_counter(), time.process_time()
            result = build_folder("specs", "out", jobs=args.jobs)
            inproc.append(time.perf_counter() - started)
            inproc_cpu.append(time.process_time() - cpu)
            assert result.compiled == 1 and result.count("built") == 1, result
        print(f"one changed spec (in-process):   {statistics.median(inproc) * 1000:6.0f} ms (median of 10, "
              f"max {max(inproc) * 1000:.0f} ms); CPU {statistics.median(inproc_cpu) * 1000:.0f} ms")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
