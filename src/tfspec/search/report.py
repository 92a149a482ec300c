"""The search's outputs: ``search.json``, the self-contained ``report.html`` and the chosen overlay file.

The page shows every trial, and accuracy against size and against p95 latency with the Pareto front and
the gates drawn (inline SVG: no images, no scripts). This module computes every coordinate; the template
``search/report.html.j2`` only lays them out.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml

from tfspec.base.atomic import write_text_atomic
from tfspec.base.templating import environment
from tfspec.compiler.search import SEARCHED_ENV

from .driver import SearchOutcome, TrialRecord

__all__ = ["SEARCH_JSON", "SEARCH_HTML", "overlay_path", "overlay_text", "output_files", "write_overlay", "render_html"]

SEARCH_JSON = "search.json"
SEARCH_HTML = "report.html"
_W, _H, _PAD = 420, 280, 48


def overlay_path(spec_path: Path, env: str = SEARCHED_ENV) -> Path:
    """``<spec stem>.<env>.env.yaml`` beside the spec: what ``tfspec build SPEC -e searched`` reads."""
    return spec_path.with_name(f"{spec_path.stem}.{env}.env.yaml")


def overlay_text(outcome: SearchOutcome, chosen: TrialRecord) -> str:
    lines = [f"# Written by `tfspec search` (study {outcome.study_name}, trial {chosen.number}): review, then commit.",
             f"# Used by `tfspec build SPEC -e {SEARCHED_ENV}` / `tfspec run SPEC -e {SEARCHED_ENV}`.",
             "# Measured: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(chosen.metrics.items()))]
    body = yaml.safe_dump(chosen.overlay, sort_keys=True, default_flow_style=None, width=110)
    return "\n".join(lines) + "\n" + body


def _scale(values: list[float], size: int, invert: bool) -> Any:
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.5 * abs(low or 1) * 0.1, high + 0.5 * abs(high or 1) * 0.1
    span = high - low
    low, high = low - 0.05 * span, high + 0.05 * span

    def place(v: float) -> float:
        f = (v - low) / (high - low)
        return round(_PAD + (1 - f if invert else f) * (size - 2 * _PAD), 1)

    return place, low, high


def _chart(outcome: SearchOutcome, x_metric: str, x_label: str, gate_x: float | None,
           gate_y: float | None) -> dict[str, Any] | None:
    points = [r for r in outcome.trials if r.state == "complete" and x_metric in r.metrics]
    if not points:
        return None
    xs = [r.metrics[x_metric] for r in points] + ([gate_x] if gate_x is not None else [])
    ys = [r.metrics["accuracy"] for r in points] + ([gate_y] if gate_y is not None else [])
    px, xlo, xhi = _scale(xs, _W, False)
    py, ylo, yhi = _scale(ys, _H, True)
    chosen = outcome.chosen.number if outcome.chosen else None
    dots = [{"x": px(r.metrics[x_metric]), "y": py(r.metrics["accuracy"]), "number": r.number,
             "cls": "chosen" if r.number == chosen else "front" if r.number in outcome.pareto
             else "pass" if r.passed else "miss"} for r in points]
    front = sorted((d for d in dots if d["cls"] in ("front", "chosen")), key=lambda d: d["x"])
    return {"title": f"accuracy against {x_label}", "width": _W, "height": _H, "pad": _PAD, "dots": dots,
            "front": " ".join(f"{d['x']},{d['y']}" for d in front),
            "gate_x": px(gate_x) if gate_x is not None else None, "gate_y": py(gate_y) if gate_y is not None else None,
            "x_label": x_label, "x_ticks": [f"{xlo:.3g}", f"{xhi:.3g}"], "y_ticks": [f"{ylo:.3g}", f"{yhi:.3g}"]}


def _accuracy_floor(outcome: SearchOutcome) -> float | None:
    floors = []
    if "min_accuracy" in outcome.gates:
        floors.append(outcome.gates["min_accuracy"])
    base = (outcome.baseline or {}).get("value")
    if "max_accuracy_drop" in outcome.gates and base is not None:
        floors.append(base - outcome.gates["max_accuracy_drop"])
    return max(floors) if floors else None


def context(outcome: SearchOutcome) -> dict[str, Any]:
    floor = _accuracy_floor(outcome)
    charts = [c for c in (_chart(outcome, "size_kb", "size (KiB)", outcome.gates.get("max_size_kb"), floor),
                          _chart(outcome, "latency_ms_p95", "p95 latency (ms)", outcome.gates.get("max_latency_ms"),
                                 floor)) if c]
    params = sorted({p for r in outcome.trials for p in r.params})
    rows = [{"number": r.number, "state": r.state, "params": [_fmt(r.params.get(p)) for p in params],
             "accuracy": _fmt(r.metrics.get("accuracy")), "size_kb": _fmt(r.metrics.get("size_kb")),
             "latency": _fmt(r.metrics.get("latency_ms_p95")), "passed": r.passed, "front": r.number in outcome.pareto,
             "chosen": outcome.chosen is not None and r.number == outcome.chosen.number,
             "steps": f"{r.ran} ran, {r.cached} cached" if r.state == "complete" else "",
             "duration": _fmt(r.duration_s),
             "error": r.error or ("the spec's own values" if r.spec_own else "")} for r in outcome.trials]
    return {"study": outcome.study_name, "charts": charts, "params": params, "rows": rows,
            "gates": [f"{k} {v:g}" for k, v in sorted(outcome.gates.items())],
            "chosen": outcome.chosen.number if outcome.chosen else None,
            "overlay": yaml.safe_dump(outcome.chosen.overlay, sort_keys=True) if outcome.chosen else ""}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_html(outcome: SearchOutcome) -> str:
    return environment().get_template("search/report.html.j2").render(**context(outcome))


def to_json(outcome: SearchOutcome) -> dict[str, Any]:
    return {"study": outcome.study_name, "chosen": outcome.chosen.number if outcome.chosen else None,
            "pareto": list(outcome.pareto), "gates": outcome.gates, "baseline": outcome.baseline,
            "trials": [dataclasses.asdict(r) for r in outcome.trials]}


def output_files(outcome: SearchOutcome) -> dict[str, str]:
    """The search's output folder (``search.json`` and ``report.html``): the CLI writes it as it writes every
    output folder (atomically, with a manifest, never over a folder that is not an earlier search's)."""
    return {SEARCH_JSON: json.dumps(to_json(outcome), indent=2, sort_keys=True) + "\n",
            SEARCH_HTML: render_html(outcome)}


def write_overlay(outcome: SearchOutcome, spec_path: Path) -> Path | None:
    """The chosen trial's overlay beside the spec (``<stem>.searched.env.yaml``); its path, None when no trial
    met the gates."""
    if outcome.chosen is None:
        return None
    path = overlay_path(spec_path)
    write_text_atomic(path, overlay_text(outcome, outcome.chosen))
    return path
