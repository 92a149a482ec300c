"""Whole-process time of `tfspec build` on the example, relative to importing the libraries it uses.

Prints the median of N runs of each command, measured in the same run, and their ratio (goal <= 2.0), in
wall time and in CPU time (user + sys of the child process: the steadier measure on a loaded machine).
Two baselines: the issue's literal one (`import yaml, pydantic, jinja2`, where `import pydantic` is lazy)
and the libraries as the compiler really loads them (pydantic's BaseModel, jinja2, yaml, click).

    python benchmarks/bench_build.py [--runs 21] [--fresh]

Every run writes to the same output folder, so from the second run on `tfspec build` finds its output up
to date (what a re-run in CI or an editor hook sees); ``--fresh`` gives each run a new, empty folder
(every build compiles and writes).
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

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "digits" / "deploy.yaml"


def _run(command: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--fresh", action="store_true", help="a new output folder for every build")
    args = parser.parse_args()
    tfspec = Path(sys.executable).with_name("tfspec")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out")
        commands = {
            "tfspec build": [str(tfspec), "build", str(SPEC), "--out", out],
            "import yaml, pydantic, jinja2": [sys.executable, "-c", "import yaml, pydantic, jinja2"],
            "import libraries as used": [sys.executable, "-c",
                                         "import yaml, jinja2, click; from pydantic import BaseModel"],
        }
        # interleave warm-ups so every command sees the same file-system cache state
        for command in commands.values():
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for index in range(args.runs):  # interleaved: a load change hits every command alike
            for name, command in commands.items():
                if args.fresh and name == "tfspec build":
                    command = command[:-1] + [str(Path(tmp) / f"fresh-{index}")]
                samples[name].append(_run(command))
    wall = {name: statistics.median(s[0] for s in runs) for name, runs in samples.items()}
    cpu = {name: statistics.median(s[1] for s in runs) for name, runs in samples.items()}
    print(f"{'fresh output folders' if args.fresh else 'one output folder (up to date from the 2nd run)'}, "
          f"{args.runs} runs each, load average {os.getloadavg()[0]:.1f}")
    for name in commands:
        print(f"{name:32s} median wall {wall[name] * 1000:7.1f} ms   CPU {cpu[name] * 1000:7.1f} ms")
    base, used = "import yaml, pydantic, jinja2", "import libraries as used"
    print(f"ratio build / '{base}': wall {wall['tfspec build'] / wall[base]:.2f}, "
          f"CPU {cpu['tfspec build'] / cpu[base]:.2f} (goal <= 2.0)")
    print(f"ratio build / libraries as used:              wall {wall['tfspec build'] / wall[used]:.2f}, "
          f"CPU {cpu['tfspec build'] / cpu[used]:.2f}")


if __name__ == "__main__":
    main()
