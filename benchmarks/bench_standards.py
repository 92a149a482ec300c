"""Folder builds of specs that share one base spec, against the same specs written out in full (goal: <= +20 %).

Generates the N specs of ``bench_scale.py`` three ways, with the same resolved content, in one temporary
folder each:

* ``plain``: every spec complete (today's layout);
* ``base``: ``data``, ``training`` and ``compression`` moved into one base spec, each spec ``extends:`` it;
* ``base+policies``: the same, plus a project file naming the base and the example policy file of
  ``examples/gitops`` (six CEL rules, one of them over the rendered objects).

Each is built cold through the CLI (``python -m tfspec build specs --out out``, wall time, interpreter
start-up included), in alternating rounds (plain, base, base+policies, plain, ...) so that the machine's
load affects all three alike; the medians and their ratios to ``plain`` are printed, with the load.

    python benchmarks/bench_standards.py [--specs 500] [--rounds 2] [--jobs N] [--kinds plain,base]
        [--before ../main]

``--before DIR``: also build every layout with the tfspec source of the checkout ``DIR`` (``DIR/src`` first on
``PYTHONPATH``), alternating with this checkout's in every round, and print both side by side.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import spec_text  # noqa: E402  (the same 500 variants)

POLICIES = Path(__file__).resolve().parents[1] / "examples" / "gitops" / "standards" / "policies.yaml"
SHARED = ("data:", "training:", "compression:")


def split_spec(text: str) -> tuple[str, str]:
    """(the spec without the shared sections + ``extends:``, the shared sections)."""
    lines = text.splitlines(keepends=True)
    own: list[str] = []
    shared: list[str] = []
    current = own
    for line in lines:
        if line[:1].isalpha():
            current = shared if line.startswith(SHARED) else own
        current.append(line)
    body = "".join(own).replace("api_version: tfspec/v1\n", "api_version: tfspec/v1\nextends: ../../base.yaml\n", 1)
    return body, "".join(shared)


def layout(root: Path, count: int, kind: str) -> None:
    (root / ".git").mkdir(parents=True)  # the project-file search stops here
    base_text = None
    for index in range(count):
        folder = root / "specs" / f"team-{index % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        # the cluster target waits in a Kueue queue, as the example policies ask (in every layout: same content)
        text = spec_text(index).replace("    workers: 1\n", "    workers: 1\n    queue: {name: ml-team}\n", 1)
        if kind != "plain":
            text, shared = split_spec(text)
            assert base_text in (None, shared), "the shared sections must be the same in every spec"
            base_text = shared
        (folder / f"model-{index:04d}.yaml").write_text(text)
    if base_text is not None:
        (root / "base.yaml").write_text(base_text)
    if kind == "base+policies":
        shutil.copy(POLICIES, root / "policies.yaml")
        (root / "tfspec.yaml").write_text("policies: [policies.yaml]\n")


def cold_build(root: Path, jobs: list[str], source: Path | None = None) -> tuple[float, float]:
    """Wall time and CPU time (user + sys of the build and its workers) of one cold CLI build; ``source``: the
    ``src`` folder of another checkout to build with instead of the installed tfspec."""
    shutil.rmtree(root / "out", ignore_errors=True)
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, [env.get("PYTHONPATH")])])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "tfspec", "build", "specs", "--out", "out", *jobs], cwd=root,
                            capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(result.stdout[-2000:] + result.stderr[-2000:])
    return elapsed, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--kinds", default="plain,base,base+policies",
                        help="comma-separated layouts to build (plain must be one: ratios are to it)")
    parser.add_argument("--before", type=Path, default=None,
                        help="another checkout: build each layout with its source too, alternating")
    args = parser.parse_args()
    jobs = ["-j", str(args.jobs)] if args.jobs else []
    layouts = tuple(args.kinds.split(","))
    assert "plain" in layouts, "--kinds needs plain"
    sources: dict[str, Path | None] = {"": None}
    if args.before is not None:
        sources = {"before ": (args.before / "src").resolve(), "after ": None}
    kinds = tuple(f"{label}{kind}" for kind in layouts for label in sources)
    with tempfile.TemporaryDirectory() as tmp:
        roots = {f"{label}{kind}": Path(tmp) / kind.replace("+", "-") for kind in layouts for label in sources}
        for kind in layouts:
            layout(Path(tmp) / kind.replace("+", "-"), args.specs, kind)
        # the same output, byte for byte, apart from nothing: the base changes where values are written only
        print(f"{args.specs} specs, {os.cpu_count()} CPUs, workers: {args.jobs or os.cpu_count()}, "
              f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at start")
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        cpus: dict[str, list[float]] = {kind: [] for kind in kinds}
        for round_ in range(args.rounds):
            for kind in kinds:
                wall, cpu = cold_build(roots[kind], jobs, sources[kind[:-len(kind.split(" ")[-1])]])
                times[kind].append(wall)
                cpus[kind].append(cpu)
                print(f"  round {round_ + 1}: {kind:<21} {wall:6.2f} s wall, {cpu:6.2f} s CPU", flush=True)
        same = "base" not in layouts or all(
            (roots[f"{label}plain"] / "out" / name / "plan.json").read_text()
            == (roots[f"{label}base"] / "out" / name / "plan.json").read_text()
            for name in ("model-0000", "model-0001", f"model-{args.specs - 1:04d}") for label in list(sources)[-1:])
        for kind in kinds:
            label = kind[:-len(kind.split(" ")[-1])]
            plain, plain_cpu = statistics.median(times[f"{label}plain"]), statistics.median(cpus[f"{label}plain"])
            median, cpu = statistics.median(times[kind]), statistics.median(cpus[kind])
            print(f"cold build, {kind:<21} {median:6.2f} s wall, {cpu:6.2f} s CPU (medians of {args.rounds})   "
                  f"ratio to plain: wall {median / plain:.2f}, CPU {cpu / plain_cpu:.2f}"
                  + ("   goal <= 1.20: " + ("met" if median / plain <= 1.2 else "NOT met")
                     if kind.endswith(("base", "base+policies")) else ""))
        print(f"plans identical with and without the base: {same}")
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
