"""``report.html``: one self-contained page (charts embedded as PNG data URIs) built from ``report.json``.

The runtime calls :func:`write_report_html` after ``tfspec run`` has written ``report.json``; ``tfspec
report`` calls it again on the last run's folder. This module computes every value the page shows; the
Jinja template ``report/report.html.j2`` only lays it out. No TensorFlow is imported here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tfspec.base.atomic import write_text_atomic
from tfspec.base.templating import environment
from tfspec.plan import COMPRESSION_STEP_KINDS, MODEL_STEP_KINDS
from tfspec.base.errors import TfspecError

__all__ = ["REPORT_JSON", "REPORT_HTML", "ReportError", "load_report", "report_context", "render_report_html",
           "write_report_html"]

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
TEMPLATE = "report/report.html.j2"


class ReportError(TfspecError):
    """``report.json`` is missing or not in the shape ``tfspec run`` writes."""


def load_report(path: Path) -> dict[str, Any]:
    """Read ``report.json``; a missing or unreadable file is a :class:`ReportError` naming it."""
    if not path.is_file():
        raise ReportError(f"{path} not found: run `tfspec run` first, or point --dist-dir at the folder of a run")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{path}: cannot read the run report: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("spec"), dict) or not isinstance(data.get("steps"), list):
        raise ReportError(f"{path}: not a tfspec run report (expected an object with 'spec' and 'steps')")
    return data


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "n/a"
    return format(float(value), spec)


def _kb(size_bytes: Any) -> str:
    return "n/a" if size_bytes is None else f"{float(size_bytes) / 1024.0:,.1f} KiB"


def _ratio(baseline: Any, value: Any) -> str:
    if baseline in (None, 0) or value in (None, 0):
        return ""
    ratio = float(baseline) / float(value)
    return f"{ratio:.1f}× smaller" if ratio >= 1.0 else f"{1.0 / ratio:.1f}× larger"


def _gate_limit(name: str, limit: Any) -> str:
    if limit is None:
        return "n/a"
    units = {"max_size_kb": " KiB", "max_latency_ms": " ms", "vs_released.max_size_growth_percent": " %",
             "vs_released.max_latency_growth_percent": " %"}
    return f"{float(limit):g}{units.get(name, '')}"


def _step_rows(steps: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    from .report_charts import step_state

    rows = []
    for step in steps:
        state = step_state(step)
        duration = step.get("duration_s")
        rows.append({
            "id": str(step["id"]),
            "kind": str(step.get("kind", "")),
            "target": str(step.get("target") or ""),
            "state": state,
            "duration": "" if state != "run" or duration is None else f"{float(duration):.2f} s",
            "fingerprint": str(step.get("fingerprint", ""))[:12],
            "inputs": ", ".join(str(i) for i in step.get("inputs") or []),
        })
    return rows


def _stage_rows(stages: list[Mapping[str, Any]], targets: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The trained model, each compression stage (with what that stage alone cost) and each target."""
    rows = []
    previous: Any = None
    for stage in stages:
        value = stage.get("value")
        cost = None if previous is None or value is None else float(stage.get("change_from_trained", 0.0)) - previous
        rows.append({"name": str(stage.get("label")), "kind": "keras" if stage.get("kind") == "train" else str(stage.get("kind")),
                     "value": _fmt(value, ".4f"),
                     "from_trained": "" if previous is None else _fmt(stage.get("change_from_trained"), "+.4f"),
                     "stage_cost": "" if cost is None else _fmt(cost, "+.4f"),
                     "size": _kb(stage.get("size_bytes")), "gzip": _kb(stage.get("gzip_bytes")),
                     "params": stage.get("params")})
        previous = float(stage.get("change_from_trained") or 0.0)
    for name, target in targets.items():
        metrics = target.get("metrics") or {}
        rows.append({"name": str(name), "kind": str(target.get("kind", "")),
                     "value": _fmt(metrics.get("value", metrics.get("accuracy")), ".4f"),
                     "from_trained": _fmt(metrics.get("drop_from_trained", metrics.get("accuracy_drop")), "+.4f"),
                     "stage_cost": _fmt(metrics.get("drop_from_final_keras"), "+.4f")
                     if metrics.get("drop_from_final_keras") is not None else "",
                     "size": _kb(metrics.get("size_bytes")), "gzip": _kb(metrics.get("gzip_bytes")), "params": None})
    return rows


def _size_points(stages: list[Mapping[str, Any]], targets: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    from .report_charts import FAIL_COLOR, NO_GATE_COLOR, PASS_COLOR

    points: list[dict[str, Any]] = [{"label": s.get("label"), "kind": "keras", "size_bytes": s.get("size_bytes"),
                                     "value": s.get("value")} for s in stages]
    for name, target in targets.items():
        metrics = target.get("metrics") or {}
        color = NO_GATE_COLOR if not target.get("gates") else (PASS_COLOR if target.get("passed") else FAIL_COLOR)
        points.append({"label": name, "kind": "target", "size_bytes": metrics.get("size_bytes"),
                       "value": metrics.get("value", metrics.get("accuracy")), "color": color})
    return points


def _class_rows(labels: list[str], counts: Mapping[str, list[int]] | None) -> list[dict[str, Any]]:
    if not counts:
        return []
    width = max(len(v) for v in counts.values())
    return [{"label": labels[k] if k < len(labels) else str(k),
             **{split: (counts.get(split) or [0] * width)[k] for split in ("train", "validation", "test")}}
            for k in range(width)]


def _confusion(name: str, matrix: Any, per_class: Any, labels: list[str]) -> dict[str, Any] | None:
    if not matrix:
        return None
    names = [labels[k] if k < len(labels) else str(k) for k in range(len(matrix))]
    stats = per_class or [{} for _ in matrix]
    peak = max((max(row) for row in matrix), default=1) or 1
    rows = []
    for k, row in enumerate(matrix):
        cells = [{"count": int(c), "diagonal": j == k,
                  "shade": round(0.12 + 0.6 * c / peak, 3) if c else 0.0} for j, c in enumerate(row)]
        rows.append({"label": names[k], "cells": cells, "precision": _fmt(stats[k].get("precision"), ".3f"),
                     "recall": _fmt(stats[k].get("recall"), ".3f"), "support": stats[k].get("support", sum(row))})
    return {"name": name, "labels": names, "rows": rows}


def _accelerator_rows(coverage: Any) -> list[dict[str, Any]]:
    """Op coverage of a tflite target per accelerator (runtime/accelerators.py), one row each: the loader's
    accelerators first, in the order it tries them, with what each computes in and whether it was measured."""
    if not isinstance(coverage, Mapping):
        return []
    executed = {str(e.get("accelerator")): e for e in coverage.get("execution") or [] if isinstance(e, Mapping)}
    rows = []
    for name in [*executed, *(n for n in ("gpu", "npu", "cpu") if n not in executed)]:
        entry = coverage.get(name)
        if isinstance(entry, Mapping):
            fallback = [f"{f.get('op')}: {f.get('reason')}" for f in entry.get("cpu_fallback") or [] if isinstance(f, Mapping)]
            tried = executed.get(name)
            rows.append({"name": name, "delegated": entry.get("delegated"), "ops": entry.get("ops"),
                         "coverage": _fmt(entry.get("coverage"), ".0%"), "fallback": fallback,
                         "order": tried.get("order") if tried else "not tried",
                         "computes_in": tried.get("computes_in", "") if tried else "",
                         "measured": ("yes: " if tried.get("measured") else "no: ") + str(tried.get("note", ""))
                         if tried else ""})
    return rows


def _target_rows(baseline: Mapping[str, Any], targets: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name, target in targets.items():
        metrics = target.get("metrics") or {}
        gates = [{"name": str(g.get("name")), "limit": _gate_limit(str(g.get("name")), g.get("limit")),
                  "value": _fmt(g.get("value"), ".4g"), "passed": bool(g.get("passed")),
                  "ops": ", ".join(str(op) for op in g.get("ops") or [])}
                 for g in target.get("gates") or []]
        rows.append({
            "name": str(name),
            "kind": str(target.get("kind", "")),
            "artifact": str(target.get("artifact") or ""),
            "accuracy": _fmt(metrics.get("accuracy"), ".4f"),
            "accuracy_drop": _fmt(metrics.get("accuracy_drop"), "+.4f"),
            "size": _kb(metrics.get("size_bytes")),
            "gzip": _kb(metrics.get("gzip_bytes")),
            "size_ratio": _ratio(baseline.get("size_bytes"), metrics.get("size_bytes")),
            "p50": _fmt(metrics.get("latency_ms_p50"), ".3g"),
            "p95": _fmt(metrics.get("latency_ms_p95"), ".3g"),
            "gates": gates,
            "passed": bool(target.get("passed", all(g["passed"] for g in gates))),
            "has_gates": bool(gates),
            "accelerators": _accelerator_rows(target.get("accelerators")),
        })
    return rows


def _released_rows(targets: Mapping[str, Mapping[str, Any]], metric: str, labels: list[str]) -> list[dict[str, Any]]:
    """Each target beside its released model (``targets[].released``): the figures of both on the same test
    split, the change (``worse by`` > 0: the candidate is worse), the ``vs_released`` gates, per class."""
    rows = []
    for name, target in targets.items():
        released = target.get("released")
        if not isinstance(released, Mapping):
            continue
        if not released.get("found"):
            rows.append({"name": str(name), "found": False, "description": str(released.get("description", ""))})
            continue
        candidate, old = released.get("candidate") or {}, released.get("metrics") or {}
        change = released.get("change") or {}
        figures = [
            (metric, _fmt(candidate.get("value"), ".4f"), _fmt(old.get("value"), ".4f"),
             f"worse by {_fmt(change.get('worse_by'), '+.4f')}"),
            ("size", _kb(candidate.get("size_bytes")), _kb(old.get("size_bytes")),
             f"{_fmt(change.get('size_growth_percent'), '+.1f')} %"),
            ("gzipped", _kb(candidate.get("gzip_bytes")), _kb(old.get("gzip_bytes")), ""),
            ("latency p50 (ms)", _fmt(candidate.get("latency_ms_p50"), ".3g"), _fmt(old.get("latency_ms_p50"), ".3g"), ""),
            ("latency p95 (ms)", _fmt(candidate.get("latency_ms_p95"), ".3g"), _fmt(old.get("latency_ms_p95"), ".3g"),
             f"{_fmt(change.get('latency_growth_percent'), '+.1f')} %"),
        ]
        ours, theirs = released.get("candidate_per_class") or [], released.get("per_class") or []
        classes = [{"label": labels[k] if k < len(labels) else str(k),
                    "precision": _fmt(ours[k].get("precision"), ".3f"), "released_precision": _fmt(theirs[k].get("precision"), ".3f"),
                    "recall": _fmt(ours[k].get("recall"), ".3f"), "released_recall": _fmt(theirs[k].get("recall"), ".3f"),
                    "support": ours[k].get("support")}
                   for k in range(min(len(ours), len(theirs)))]
        gates = [{"name": str(g.get("name")), "limit": _gate_limit(str(g.get("name")), g.get("limit")),
                  "value": _fmt(g.get("value"), ".4g"), "passed": bool(g.get("passed"))}
                 for g in target.get("gates") or [] if str(g.get("name", "")).startswith("vs_released.")]
        rows.append({"name": str(name), "found": True, "description": str(released.get("description", "")),
                     "contract": str(released.get("contract", "")),
                     "figures": [{"what": w, "candidate": c, "released": r, "change": d} for w, c, r, d in figures],
                     "gates": gates, "classes": classes})
    return rows


def report_context(report: Mapping[str, Any], charts: bool = True) -> dict[str, Any]:
    """Everything the template shows, computed and formatted (``charts=False`` skips the images)."""
    from . import report_charts

    try:
        spec = report["spec"]
        steps: list[Mapping[str, Any]] = [s for s in report["steps"] if isinstance(s, Mapping) and "id" in s]
        baseline: Mapping[str, Any] = report.get("baseline") or {}
        targets: Mapping[str, Mapping[str, Any]] = report.get("targets") or {}
        history: Mapping[str, Mapping[str, list[float]]] = report.get("history") or {}
        metric = str(report.get("metric") or baseline.get("metric") or "accuracy")
        by_id = {str(s["id"]): s for s in steps}
        stages: list[Mapping[str, Any]] = [s for s in report.get("stages") or [] if isinstance(s, Mapping)]
        reference = stages[0].get("value") if stages else baseline.get("value")
        labels = [str(label) for label in (report.get("labels") or [])]
        confusions = [c for c in (
            [_confusion(f"{stages[0].get('label')} (Keras)", stages[0].get("confusion"), stages[0].get("per_class"),
                        labels)] if stages else []) + [
            _confusion(str(name), t.get("confusion"), t.get("per_class"), labels) for name, t in targets.items()]
            if c is not None]
        machine = report.get("machine") or {}

        training = []
        ordered = [i for i in by_id if i in history] + [i for i in history if i not in by_id]
        for step_id in ordered:
            series = history[step_id]
            step = by_id.get(step_id, {})
            epochs = max((len(v) for v in series.values() if isinstance(v, list)), default=0)
            final = {key: _fmt(values[-1], ".4f") for key, values in series.items() if isinstance(values, list) and values}
            training.append({"id": step_id, "kind": str(step.get("kind", "")), "epochs": epochs,
                             "final": sorted(final.items()),
                             "image": report_charts.training_curves_png(step_id, series, metric) if charts else ""})

        models = []
        compression = []
        for step in steps:
            if step.get("kind") not in MODEL_STEP_KINDS:
                continue
            metrics = step.get("metrics") or {}
            layers = [layer for layer in metrics.get("layers") or [] if isinstance(layer, Mapping)]
            models.append({"id": str(step["id"]), "kind": str(step["kind"]), "params": metrics.get("params"),
                           "accuracy": _fmt(metrics.get("accuracy"), ".4f")})
            if step.get("kind") in COMPRESSION_STEP_KINDS and layers:
                compression.append({
                    "id": str(step["id"]), "kind": str(step["kind"]),
                    "layers": [{"layer": str(layer.get("layer")), "kernel_size": layer.get("kernel_size"),
                                "nonzero": layer.get("nonzero"), "unique": layer.get("unique"),
                                "sparsity": _fmt(layer.get("sparsity"), ".1%")} for layer in layers],
                    "image": report_charts.layers_png(str(step["id"]), layers) if charts else "",
                })

        latency = baseline.get("latency_ms") or {}
        naive = report.get("naive_baseline")  # what a model that ignores its input scores (training.naive_baseline)
        ran = [s for s in steps if report_charts.step_state(s) == "run"]
        return {
            "spec": {"name": str(spec.get("name", "")), "version": spec.get("version", ""),
                     "sha256": str(spec.get("sha256", "")), "environment": spec.get("environment")},
            "passed": bool(report.get("passed")),
            "tool_versions": sorted((str(k), str(v)) for k, v in (report.get("tool_versions") or {}).items()),
            "steps": _step_rows(steps),
            "counts": {"run": len(ran), "cached": sum(1 for s in steps if report_charts.step_state(s) == "cached"),
                       "render": sum(1 for s in steps if report_charts.step_state(s) == "render")},
            "run_seconds": f"{sum(float(s.get('duration_s') or 0.0) for s in ran):.2f}",
            "plan_image": report_charts.plan_graph_png(steps) if charts and steps else "",
            "metric": metric,
            "baseline": {"accuracy": _fmt(baseline.get("value"), ".4f"), "size": _kb(baseline.get("size_bytes")),
                         "p50": _fmt(latency.get("p50"), ".3g"), "p95": _fmt(latency.get("p95"), ".3g")},
            "targets": _target_rows(baseline, targets),
            "released": _released_rows(targets, metric, labels),
            "targets_image": report_charts.targets_png(baseline, targets, reference) if charts and targets else "",
            "stages": _stage_rows(stages, targets) if stages else [],
            "size_image": report_charts.size_accuracy_png(_size_points(stages, targets), metric)
            if charts and stages else "",
            "warnings": [str(w) for w in report.get("warnings") or []],
            "machine": {"cpu": str(machine.get("cpu", "")), "cores": machine.get("cores"), "os": str(machine.get("os", "")),
                        "load": (machine.get("latency_load") or {}).get("load_1m")}
            if machine else None,
            "model_checks": [{"model": str(c.get("model")), "name": str(c.get("name")), "limit": _fmt(c.get("limit"), ".4f"),
                              "value": _fmt(c.get("value"), ".4f")}
                             for c in report.get("model_checks") or [] if isinstance(c, Mapping) and not c.get("passed")],
            "naive": ({"predictor": str(naive.get("predictor")), "value": _fmt(naive.get("value"), ".4f")}
                      if isinstance(naive, Mapping) else None),
            "class_counts": _class_rows(labels, report.get("class_counts")),
            "confusions": confusions,
            "model_summary": [{"name": str(layer.get("name")), "type": str(layer.get("type")),
                               "output_shape": str(layer.get("output_shape")), "params": layer.get("params")}
                              for layer in report.get("model_summary") or [] if isinstance(layer, Mapping)],
            "training": training,
            "models": models,
            "compression": compression,
        }
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ReportError(f"{REPORT_JSON}: not in the shape `tfspec run` writes ({type(error).__name__}: {error})") from None


def render_report_html(report: Mapping[str, Any]) -> str:
    """The page's HTML text for one run report."""
    return environment().get_template(TEMPLATE).render(**report_context(report))


def write_report_html(dist_dir: Path | str, report: Mapping[str, Any] | None = None) -> Path:
    """Write ``<dist_dir>/report.html`` from ``report`` (default: ``<dist_dir>/report.json``); returns its path.

    The file is written to a temporary name and renamed over the old one, so a failure leaves the previous
    report in place, never a half-written page.
    """
    dist = Path(dist_dir)
    data = report if report is not None else load_report(dist / REPORT_JSON)
    html = render_report_html(data)
    return write_text_atomic(dist / REPORT_HTML, html)
