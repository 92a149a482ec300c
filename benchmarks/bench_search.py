"""`tfspec search` on digits: trials per hour and the time the shared step cache saves.

Runs the small study of `tests/search` (the spec's own values, then TPE over layer width, learning rate and
quantization kind; 6 epochs, a prune stage, one int8/dynamic tflite target) as one `tfspec search` process,
then reads the study back:

* trials per hour: finished trials / wall time of the whole command (TensorFlow start-up included);
* cache reuse, two ways: (a) for every step a trial took from the cache, the seconds that step took when it
  ran, summed (the first trial's steps include the process's TensorFlow and scikit-learn start-up, so this
  overstates the saving); (b) in one warm process, the spec's own configuration run once on an empty cache
  and once on a cache holding only its `data` step: the seconds one trial saves by sharing it.

    python benchmarks/bench_search.py [--trials 8] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "search"))
sys.path.insert(0, str(ROOT / "tests"))

from search_testing import write_spec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it")
    parser.add_argument("--skip-search", action="store_true", help="only the warm-process cache comparison")
    args = parser.parse_args()
    import optuna

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-search-"))
    folder.mkdir(parents=True, exist_ok=True)
    spec = write_spec(folder, trials=args.trials)
    if args.skip_search:
        _warm_comparison(spec, folder)
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CI": "true"}
    print(f"load before: {Path('/proc/loadavg').read_text().strip()}  cores: {os.cpu_count()}")
    start = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).with_name("tfspec")), "search", spec.name], cwd=folder,
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    print(proc.stdout)
    if proc.returncode not in (0, 1):
        print(proc.stderr[-3000:])
        raise SystemExit(proc.returncode)
    print(f"load after: {Path('/proc/loadavg').read_text().strip()}")
    storage = f"sqlite:///{folder / '.tfspec' / 'search.db'}"
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    trials = study.get_trials()
    finished = [t for t in trials if t.state.is_finished()]
    ran_seconds: dict[str, float] = {}
    for t in trials:
        ran_seconds.update(t.user_attrs.get("step_seconds", {}))
    spent = sum(t.user_attrs.get("duration_s", 0.0) for t in trials)
    saved = sum(ran_seconds.get(fp, 0.0) for t in trials for fp in t.user_attrs.get("cached_steps", []))
    states = {s: sum(1 for t in trials if t.state.name == s) for s in ("COMPLETE", "PRUNED", "FAIL")}
    print(f"trials: {len(finished)} finished {states} in {wall:.1f} s wall -> {len(finished) / wall * 3600:.0f} trials/hour")
    print(f"trial time (run_plan, complete trials): {spent:.1f} s; cached steps would have cost {saved:.1f} s "
          f"more ({saved / (spent + saved) * 100:.0f}% of the uncached total)")
    _warm_comparison(spec, folder)
    if args.keep is None:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _warm_comparison(spec: Path, folder: Path, repeats: int = 3) -> None:
    import statistics

    from tfspec.compiler.pipeline import compile_spec
    from tfspec.runtime.executor import run_plan
    from tfspec.running import run_inputs_from_compiled

    result = compile_spec(spec)
    quiet = {"quiet": True, "log": lambda line: None}
    own = run_inputs_from_compiled(result)
    run_plan(own, cache_dir=folder / "warm-up-cache", dist_dir=folder / "dist-warm", **quiet)  # imports
    totals, data_steps = [], []
    for i in range(repeats):
        start = time.perf_counter()
        outcome = run_plan(own, cache_dir=folder / f"empty-cache-{i}", dist_dir=folder / "dist-empty", **quiet)
        totals.append(time.perf_counter() - start)
        data_steps.append(next(s["duration_s"] for s in outcome.report["steps"] if s["id"] == "data"))
    print(f"warm process, the spec's own configuration on an empty cache, {repeats} runs: trial "
          f"{statistics.median(totals):.2f} s (median; {min(totals):.2f}-{max(totals):.2f}), its data step "
          f"{statistics.median(data_steps):.2f} s ({min(data_steps):.2f}-{max(data_steps):.2f}): what each later "
          "trial saves by taking it from the shared cache")
    # A trial that changes only the quantization kind shares data, train, prune and export with the spec's own.
    from tfspec.compiler.pipeline import compile_document, resolve_expanded
    from tfspec.compiler.search import SEARCHED_ENV, resolve_overlaid, trial_document

    assert result.resolved is not None
    document = result.resolved.document
    _, overlay = resolve_overlaid(document, {("targets", 0, "quantization", "kind"): "dynamic"}, resolve_expanded)
    dynamic = run_inputs_from_compiled(compile_document(trial_document(document, overlay), SEARCHED_ENV)
                                       .raise_for_errors())
    shared, alone = [], []
    for i in range(repeats):
        start = time.perf_counter()
        outcome = run_plan(dynamic, cache_dir=folder / f"empty-cache-{i}", dist_dir=folder / "dist-dyn", **quiet)
        shared.append(time.perf_counter() - start)  # the spec's own run filled this cache
        ran_shared = outcome.ran
        start = time.perf_counter()
        run_plan(dynamic, cache_dir=folder / f"alone-cache-{i}", dist_dir=folder / "dist-alone", **quiet)
        alone.append(time.perf_counter() - start)
    print(f"a trial changing only the quantization kind: {statistics.median(shared):.2f} s on the shared cache "
          f"(ran {', '.join(ran_shared)}) vs {statistics.median(alone):.2f} s alone (medians of {repeats})")
    print(f"load at the end: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
