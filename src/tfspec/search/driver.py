"""``tfspec search``: an Optuna study whose trials are plan runs of the spec with sampled overrides.

Each trial samples the ``search.parameters``, applies them as the in-memory environment overlay
``searched`` (``compiler/search.py``: the merge and validation rules of ``-e NAME``), compiles that spec and
runs its plan through :func:`tfspec.runtime.executor.run_plan` against the spec's shared step cache, so a
step two trials share (the ``data`` step always) runs once. The ``train`` step reports each epoch's
validation accuracy (``runtime/epochs.py``) so the pruner can stop a hopeless trial; a stopped step leaves
nothing in the cache.

The study lives in a database (SQLite ``.tfspec/search.db`` beside the spec by default, any SQLAlchemy
URL such as ``postgresql://`` or ``mysql+pymysql://``), named from the spec name and the hash of everything a
trial's plan depends on except the searched values (``compiler.search.study_content``: the resolved spec,
the search section without its budget, the input files' digests, the tool versions): a killed search started
again continues it, raising the budget continues it, processes started on the same study share its trials,
and a spec or data edit outside the searched values starts a new study. Trials that a killed process left running are failed by Optuna's heartbeat and retried once.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from tfspec.compiler.pipeline import CompileResult, compile_document, compile_spec, resolve_expanded
from tfspec.compiler.search import (SEARCHED_ENV, parse_key_path, resolve_overlaid, study_content, study_name,
                                   trial_document)
from tfspec.base.errors import Diagnostic, SpecError, TfspecError
from tfspec.spec.search import Choice, FloatRange, IntRange, Minimize, Search

__all__ = ["SearchOutcome", "TrialRecord", "run_search", "default_storage", "search_dir", "open_study",
           "trial_records", "chosen_trial", "pareto_numbers", "MAXIMISED"]

MAXIMISED = ("accuracy",)
"""Objective metrics that are maximised; every other one is minimised."""
HEARTBEAT_S = 10
GRACE_S = 30


class _Pruned(TfspecError):
    """Raised from the epoch observer to stop the ``train`` step of a trial the pruner gave up on."""


class _TrialFailed(Exception):
    """A trial whose spec or run failed (recorded as FAIL; the search goes on)."""


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One trial as the report and the chosen overlay see it."""

    number: int
    state: str
    params: dict[str, Any]
    metrics: dict[str, float]
    passed: bool
    values: tuple[float, ...] | None
    overlay: dict[str, Any]
    duration_s: float | None
    ran: int
    cached: int
    error: str | None
    spec_own: bool = False


@dataclasses.dataclass(frozen=True)
class SearchOutcome:
    """What :func:`run_search` did."""

    study_name: str
    storage: str
    trials: tuple[TrialRecord, ...]
    chosen: TrialRecord | None
    pareto: tuple[int, ...]
    baseline: dict[str, Any] | None
    gates: dict[str, float]
    ran_here: int


def search_dir(spec_path: Path) -> Path:
    """``.tfspec/search/`` beside the spec: per-trial dist folders."""
    return spec_path.absolute().parent / ".tfspec" / "search"


def default_storage(spec_path: Path) -> str:
    """``sqlite:///…/.tfspec/search.db`` beside the spec."""
    return f"sqlite:///{spec_path.absolute().parent / '.tfspec' / 'search.db'}"


def _directions(search: Search) -> list[str]:
    metrics = [search.objective.metric] if isinstance(search.objective, Minimize) else search.objective.metrics
    return ["maximize" if m in MAXIMISED else "minimize" for m in metrics]


def _metrics_of(search: Search) -> list[str]:
    return [search.objective.metric] if isinstance(search.objective, Minimize) else list(search.objective.metrics)


def _sampler(search: Search, seed: int | None) -> optuna.samplers.BaseSampler:
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, search.budget.trials))


def _pruner(search: Search) -> optuna.pruners.BasePruner:
    if search.pruner.kind == "none" or len(_directions(search)) > 1:
        return optuna.pruners.NopPruner()  # Optuna prunes single-objective studies only
    return optuna.pruners.MedianPruner(n_startup_trials=search.pruner.startup_trials,
                                       n_warmup_steps=search.pruner.warmup_epochs)


def open_study(name: str, storage_url: str, search: Search, seed: int | None = None) -> optuna.Study:
    """Create the study or join the one of that name already in the database."""
    if storage_url.startswith("sqlite:///"):
        Path(storage_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = optuna.storages.RDBStorage(
            storage_url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
            failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=1),
            engine_kwargs={"connect_args": {"timeout": 60}} if storage_url.startswith("sqlite") else None)
    return optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                               directions=_directions(search), sampler=_sampler(search, seed), pruner=_pruner(search))


def _suggest(trial: optuna.Trial, parameter: IntRange | FloatRange | Choice) -> Any:
    if isinstance(parameter, IntRange):
        return trial.suggest_int(parameter.path, parameter.low, parameter.high, step=parameter.step, log=parameter.log)
    if isinstance(parameter, FloatRange):
        return trial.suggest_float(parameter.path, parameter.low, parameter.high, log=parameter.log)
    return trial.suggest_categorical(parameter.path, list(parameter.choices))


def _gate_constraints(target: dict[str, Any]) -> dict[str, float]:
    """0 for each gate met, by how much it was missed otherwise (Optuna's convention: feasible when ≤ 0)."""
    return {gate["name"]: 0.0 if gate["passed"] else max(abs(float(gate["value"]) - float(gate["limit"])), 1e-9)
            for gate in target["gates"]}


def _target_metrics(target: dict[str, Any]) -> dict[str, float]:
    m = target["metrics"]
    return {"accuracy": m["accuracy"], "accuracy_drop": m["accuracy_drop"], "size_kb": m["size_bytes"] / 1024.0,
            "latency_ms_p95": m["latency_ms_p95"], "latency_ms_p50": m["latency_ms_p50"]}


def _trial_objective(spec_path: Path, base: CompileResult, search: Search, cache_dir: Path,
                     log: Callable[[str], None]) -> Callable[[optuna.Trial], Any]:
    from tfspec.runtime.epochs import observing_epochs
    from tfspec.runtime.executor import CHECKPOINTS_DIR, run_plan
    from tfspec.runtime.tf import import_tf
    from tfspec.running import run_inputs_from_compiled

    assert base.resolved is not None
    document = base.resolved.document
    target_name = search.objective.target
    metric_names = _metrics_of(search)

    def objective(trial: optuna.Trial) -> Any:
        values = {parameter.path: _suggest(trial, parameter) for parameter in search.parameters}
        try:
            _, overlay = resolve_overlaid(document, {parse_key_path(p): v for p, v in values.items()}, resolve_expanded)
            result = compile_document(trial_document(document, overlay), SEARCHED_ENV)
            result.raise_for_errors()
        except SpecError as error:
            trial.set_user_attr("error", error.diagnostics[0].format())
            raise _TrialFailed(error.diagnostics[0].format()) from None
        result = dataclasses.replace(result, path=str(spec_path))
        trial.set_user_attr("overlay", overlay)
        assert result.plan is not None
        train = next((s for s in result.plan.steps if s.kind == "train"), None)
        multi = len(_directions(search)) > 1

        def observe(step_id: str, epoch: int, logs: dict[str, float]) -> None:
            if step_id != "train" or multi:
                return
            value = logs.get("val_accuracy", logs.get("accuracy"))
            if value is None or not math.isfinite(value):
                return
            trial.report(value, epoch)
            if trial.should_prune():
                raise _Pruned(f"trial {trial.number} pruned after epoch {epoch + 1}")

        dist = search_dir(spec_path) / "trials" / f"{trial.study.study_name}-{trial.number}"
        start = time.perf_counter()
        try:
            with observing_epochs(observe):
                outcome = run_plan(run_inputs_from_compiled(result), cache_dir=cache_dir, dist_dir=dist, quiet=True,
                                   log=lambda line: None)
        except _Pruned:
            if train is not None:  # the next trial with these values trains from scratch, not from epoch k
                shutil.rmtree(cache_dir / CHECKPOINTS_DIR / train.fingerprint, ignore_errors=True)
            raise optuna.TrialPruned() from None
        except TfspecError as error:
            trial.set_user_attr("error", str(error).splitlines()[0])
            raise _TrialFailed(str(error)) from None
        finally:
            import_tf()[1].backend.clear_session()
        shutil.rmtree(dist, ignore_errors=True)  # the trial's artifacts stay in the step cache
        target = outcome.report["targets"][target_name]
        metrics = _target_metrics(target)
        constraints = _gate_constraints(target)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("passed", bool(target["passed"]))
        for gate, value in constraints.items():
            trial.set_constraint(gate, value)  # the samplers steer away from trials that miss a gate
        trial.set_user_attr("gates", target["gates"])
        trial.set_user_attr("baseline", outcome.report["baseline"])
        trial.set_user_attr("ran", len(outcome.ran))
        trial.set_user_attr("cached", len(outcome.cached))
        trial.set_user_attr("duration_s", round(time.perf_counter() - start, 3))
        steps = [s for s in outcome.report["steps"] if s["kind"] != "render"]
        trial.set_user_attr("step_seconds", {s["fingerprint"]: s["duration_s"] for s in steps if not s["cached"]})
        trial.set_user_attr("cached_steps", [s["fingerprint"] for s in steps if s["cached"]])
        out = [metrics[m] for m in metric_names]
        return out[0] if len(out) == 1 else out

    return objective


def trial_records(study: optuna.Study) -> list[TrialRecord]:
    records = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        records.append(TrialRecord(
            number=t.number, state=t.state.name.lower(), params=dict(t.params), metrics=dict(attrs.get("metrics", {})),
            passed=bool(attrs.get("passed", False)), values=tuple(t.values) if t.values else None,
            overlay=dict(attrs.get("overlay", {})), duration_s=attrs.get("duration_s"), ran=int(attrs.get("ran", 0)),
            cached=int(attrs.get("cached", 0)), error=attrs.get("error"), spec_own=bool(attrs.get("spec_own"))))
    return records


def pareto_numbers(records: list[TrialRecord], search: Search) -> list[int]:
    """Complete trials that meet the gates and that no other such trial beats on every metric."""
    names = _metrics_of(search)
    signs = [-1.0 if m in MAXIMISED else 1.0 for m in names]
    done = [r for r in records if r.state == "complete" and r.passed and r.metrics]
    points = {r.number: [s * r.metrics[m] for s, m in zip(signs, names)] for r in done}

    def dominated(a: list[float]) -> bool:
        return any(all(x <= y for x, y in zip(b, a)) and any(x < y for x, y in zip(b, a)) for b in points.values())

    return [n for n, p in points.items() if not dominated(p)]


def chosen_trial(records: list[TrialRecord], search: Search) -> TrialRecord | None:
    """The configuration written as the overlay: the best trial that meets the gates (for a Pareto
    objective, the front member smallest in the non-accuracy metrics, in the order given)."""
    names = _metrics_of(search)
    candidates = [r for r in records if r.state == "complete" and r.passed and r.metrics]
    if not candidates:
        return None
    if isinstance(search.objective, Minimize):
        sign = -1.0 if names[0] in MAXIMISED else 1.0
        return min(candidates, key=lambda r: (sign * r.metrics[names[0]], r.number))
    front = set(pareto_numbers(records, search))
    order = [m for m in names if m not in MAXIMISED] or names
    return min((r for r in candidates if r.number in front),
               key=lambda r: (*[r.metrics[m] * (-1 if m in MAXIMISED else 1) for m in order], r.number))


def _own_values(tree: Any, search: Search) -> dict[str, Any]:
    """The spec's values of the searched key paths that lie inside their ranges (others are sampled)."""
    own: dict[str, Any] = {}
    for parameter in search.parameters:
        node = tree
        for key in parse_key_path(parameter.path):
            if isinstance(key, int) and isinstance(node, list) and key < len(node):
                node = node[key]
            elif isinstance(key, str) and isinstance(node, dict) and key in node:
                node = node[key]
            else:
                node = None
                break
        if isinstance(parameter, Choice):
            inside = node in parameter.choices and type(node) in {type(c) for c in parameter.choices}
        elif isinstance(parameter, IntRange):
            inside = (type(node) is int and parameter.low <= node <= parameter.high
                      and (node - parameter.low) % parameter.step == 0)
        else:
            inside = isinstance(node, (int, float)) and not isinstance(node, bool) and parameter.low <= node <= parameter.high
        if inside:
            own[parameter.path] = node
    return own


def _done(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=states))


def run_search(spec_path: str | Path, *, storage: str | None = None, cache_dir: Path | None = None,
               trials: int | None = None, minutes: float | None = None,
               log: Callable[[str], None] = print) -> SearchOutcome:
    """Run (or join, or continue) the spec's study until its trial budget or wall time is spent.

    ``trials`` and ``minutes`` override the spec's budget. Raises :class:`SpecError` for an invalid spec.
    """
    spec_path = Path(spec_path)
    base = compile_spec(spec_path).raise_for_errors()
    assert base.resolved is not None
    search = base.resolved.spec.search
    if search is None:
        raise SpecError([Diagnostic(str(spec_path), 1, 1, "search", "the spec has no search section",
                                    "add one: see docs/search.md")])
    budget = trials if trials is not None else search.budget.trials
    wall = minutes if minutes is not None else search.budget.minutes
    storage_url = storage or default_storage(spec_path)
    name = study_name(base.resolved.spec.name, study_content(base.resolved, base.inputs))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(name, storage_url, search, search.seed)
    cache = Path(cache_dir) if cache_dir is not None else spec_path.absolute().parent / ".tfspec" / "cache"
    objective = _trial_objective(spec_path, base, search, cache, log)
    start = time.monotonic()
    deadline = start + wall * 60 if wall is not None else None
    ran_here = 0
    log(f"study {name} in {_shown(storage_url)}: {_done(study)} of {budget} trials done")

    def progress(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal ran_here
        ran_here += 1
        done = _done(study)
        best = chosen_trial(trial_records(study), search)
        best_text = (f"best #{best.number} " + ", ".join(f"{m} {best.metrics[m]:.4g}" for m in _metrics_of(search))
                     if best else "no trial within the gates yet")
        left = f", {max(0.0, deadline - time.monotonic()) / 60:.1f} min left" if deadline else ""
        state = trial.state.name.lower()
        detail = f" ({trial.user_attrs['error']})" if trial.user_attrs.get("error") else ""
        log(f"trial {trial.number} {state}{detail} | {done}/{budget} done | {best_text}{left}")
        if done >= budget:
            study.stop()

    if not study.get_trials(deepcopy=False):
        own = _own_values(base.resolved.document.tree, search)
        if own:  # the spec's own configuration is trial 0: what the search must beat
            study.enqueue_trial(own, user_attrs={"spec_own": True}, skip_if_exists=True)
    if _done(study) < budget:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(objective, n_trials=budget - _done(study),
                           timeout=None if deadline is None else max(1.0, deadline - time.monotonic()),
                           catch=(_TrialFailed,), callbacks=[progress], gc_after_trial=True)
    records = trial_records(study)
    chosen = chosen_trial(records, search)
    baseline = next((t.user_attrs["baseline"] for t in study.get_trials(deepcopy=False)
                     if "baseline" in t.user_attrs), None)
    target = next(t for t in base.resolved.spec.targets if t.name == search.objective.target)
    gates = {k: v for k, v in (target.gates.model_dump() if getattr(target, "gates", None) else {}).items()
             if v is not None}
    return SearchOutcome(name, storage_url, tuple(records), chosen, tuple(pareto_numbers(records, search)),
                         baseline, gates, ran_here)


def _shown(url: str) -> str:
    """The storage URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
