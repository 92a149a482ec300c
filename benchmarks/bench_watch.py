"""Save -> output rewritten latency of `tfspec watch` (goal: p50 <= 50 ms, p95 <= 250 ms over 200 saves).

Starts the real `tfspec watch` as a subprocess on a temporary folder, then saves one spec N times,
alternating an in-place write and an editor's atomic rename, each save changing the spec. The latency of a
save is the time from just before the write until `plan.json` in the output folder records the sha256 of
the new text (the output folder is swapped atomically, so a read sees the old or the new tree, never a mix).

    python benchmarks/bench_watch.py [--saves 200] [--specs 1] [--debounce-ms 50]

With --specs > 1 a folder of that many specs is watched and a random one is saved each time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tfspec.compiler.pipeline import compile_spec

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits" / "deploy.yaml"


def spec_text(name: str, save: int) -> str:
    text = DIGITS.read_text("utf-8").replace("name: digits ", f"name: {name} ", 1)
    return text.replace("replicas: 2,", f"replicas: {2 + save % 3},", 1) + f"# save {save}\n"


def plan_sha(plan: Path) -> str | None:
    try:
        return json.loads(plan.read_text("utf-8"))["spec"]["sha256"]
    except (OSError, ValueError, KeyError):
        return None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument("--specs", type=int, default=1)
    parser.add_argument("--debounce-ms", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        specs = root / "specs"
        specs.mkdir()
        names = [f"model-{i:03d}" for i in range(args.specs)]
        for name in names:
            (specs / f"{name}.yaml").write_text(spec_text(name, 0))
        target = f"specs/{names[0]}.yaml" if args.specs == 1 else "specs"
        out_args = ["--out", "out/model-000"] if args.specs == 1 else ["--out", "out"]
        process = subprocess.Popen([sys.executable, "-m", "tfspec", "watch", target, *out_args,
                                    "--debounce-ms", str(args.debounce_ms)],
                                   cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("watching "):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(120):
            process.kill()
            sys.exit("tfspec watch did not start:\n" + "\n".join(lines))
        latencies: list[float] = []
        try:
            for save in range(1, args.saves + 1):
                name = rng.choice(names)
                path = specs / f"{name}.yaml"
                text = spec_text(name, save)
                expected = compile_spec(f"{name}.yaml", text=text).plan.spec_sha256
                plan = root / "out" / name / "plan.json"
                started = time.perf_counter()
                if save % 2:
                    path.write_text(text)
                else:
                    temp = specs / f".{name}.yaml.swp"
                    temp.write_text(text)
                    os.replace(temp, path)
                while plan_sha(plan) != expected:
                    if time.perf_counter() - started > 10:
                        sys.exit(f"save {save} not rebuilt within 10 s:\n" + "\n".join(lines[-20:]))
                    time.sleep(0.0005)
                latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.02)
        finally:
            process.terminate()
            process.wait(30)
        reported = [int(m.group(1)) for line in lines for m in [re.search(r"\((\d+) ms\)$", line)] if m]
    print(f"tfspec watch, {args.specs} spec(s), {args.saves} saves (half in-place writes, half atomic renames), "
          f"debounce {args.debounce_ms} ms, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"save -> output rewritten: p50 {statistics.median(latencies):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
          f"max {max(latencies):.1f} ms, mean {statistics.fmean(latencies):.1f} ms")
    if reported:
        print(f"compile + write inside the watcher (its own lines): p50 {statistics.median(reported)} ms, "
              f"p95 {percentile(reported, 95)} ms")
    print(f"goal p50 <= 50 ms: {'met' if statistics.median(latencies) <= 50 else 'NOT met'}; "
          f"p95 <= 250 ms: {'met' if percentile(latencies, 95) <= 250 else 'NOT met'}")


if __name__ == "__main__":
    main()
