"""Whole-process time of `tfspec build` on the example, relative to importing the libraries it uses.

Prints the median of N runs of each command, measured in the same run, and their ratio (goal <= 2.0).
Two baselines: the issue's literal one (`import yaml, pydantic, jinja2`, where `import pydantic` is lazy)
and the libraries as the compiler really loads them (pydantic's BaseModel, jinja2, yaml, click).

    python benchmarks/bench_build.py [--runs 21]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "digits" / "deploy.yaml"


def _median_seconds(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    tfspec = Path(sys.executable).with_name("tfspec")
    with tempfile.TemporaryDirectory() as out:
        commands = {
            "tfspec build": [str(tfspec), "build", str(SPEC), "--out", out],
            "import yaml, pydantic, jinja2": [sys.executable, "-c", "import yaml, pydantic, jinja2"],
            "import libraries as used": [sys.executable, "-c",
                                         "import yaml, jinja2, click; from pydantic import BaseModel"],
        }
        # interleave warm-ups so every command sees the same file-system cache state
        for command in commands.values():
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        medians = {name: _median_seconds(command, args.runs) for name, command in commands.items()}
    build = medians["tfspec build"]
    for name, seconds in medians.items():
        print(f"{name:32s} median {seconds * 1000:7.1f} ms over {args.runs} runs")
    print(f"ratio build / 'import yaml, pydantic, jinja2': {build / medians['import yaml, pydantic, jinja2']:.2f} (goal <= 2.0)")
    print(f"ratio build / libraries as used:              {build / medians['import libraries as used']:.2f}")


if __name__ == "__main__":
    main()
