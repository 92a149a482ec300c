"""`tfspec run` against a hand-written script doing the same work (``handwritten_digits.py``).

    .venv/bin/python benchmarks/bench_vs_script.py [--repeat N]

Both run as fresh processes from an empty cache on examples/digits/deploy.yaml reduced to its android
target (train, prune + QAT, export, int8 conversion, LiteRT check; the gpu_cluster target only renders
files and the tf_serving target is dropped because the script has no counterpart for it). tfspec also
writes what the script does not: the evaluate step, the Android bundle, report.json and report.html.
The ratio of wall times is printed; goal ≤ 1.15×. Runs alternate so a change in machine load hits both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, "CI": "true"})
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"{command} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    tree = yaml.safe_load((ROOT / "examples" / "digits" / "deploy.yaml").read_text())
    tree["targets"] = [t for t in tree["targets"] if t["kind"] != "tf_serving"]
    tree.pop("environments", None)
    tfspec_times, script_times = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-vs-script-") as folder:
            work = Path(folder)
            (work / "deploy.yaml").write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
            load_before = Path("/proc/loadavg").read_text().split()[0]
            tfspec_times.append(_timed([sys.executable, "-m", "tfspec", "run", "deploy.yaml", "--quiet"], work))
            script_times.append(_timed([sys.executable, str(ROOT / "benchmarks" / "handwritten_digits.py"),
                                        str(work / "script-out")], work))
            load_after = Path("/proc/loadavg").read_text().split()[0]
            steps = json.loads((work / "dist" / "digits" / "report.json").read_text())["steps"]
            in_steps = sum(float(s["duration_s"]) for s in steps)
            slowest = sorted(steps, key=lambda s: -float(s["duration_s"]))[:5]
            top = ", ".join(f"{s['id']} {s['duration_s']:.1f}" for s in slowest)
            print(f"  tfspec: {in_steps:.1f} s in steps ({top}), "
                  f"{tfspec_times[-1] - in_steps:.1f} s outside them (start-up, dist swap, report.html)")
            print(f"tfspec run {tfspec_times[-1]:6.1f} s   script {script_times[-1]:6.1f} s   "
                  f"ratio {tfspec_times[-1] / script_times[-1]:.2f}x   load {load_before} -> {load_after}")
    print(f"best of {args.repeat}: tfspec {min(tfspec_times):.1f} s, script {min(script_times):.1f} s, "
          f"ratio {min(tfspec_times) / min(script_times):.2f}x (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
