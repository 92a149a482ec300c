"""The charts of ``report.html``: matplotlib (Agg) figures turned into PNG ``data:`` URIs.

Each function takes plain data from ``report.json`` and returns one self-contained image (no files, no
network). Nothing here imports TensorFlow; matplotlib is imported with the Agg canvas (no pyplot).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

# Figures are made with matplotlib's object API, not pyplot: no global figure registry to close, and no
# pyplot import (about 0.5 s of CPU a run); savefig draws with the Agg canvas.
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import FuncFormatter, NullFormatter

__all__ = [
    "training_curves_png",
    "targets_png",
    "size_accuracy_png",
    "layers_png",
    "plan_graph_png",
    "plan_layout",
    "STATE_COLORS",
]

DPI = 110
TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#ff7f0e"
BASELINE_COLOR = "#7f7f7f"
PASS_COLOR = "#2ca02c"
FAIL_COLOR = "#d62728"
NO_GATE_COLOR = "#4c72b0"
STATE_COLORS = {"run": "#cfe8cf", "cached": "#dde6f5", "render": "#eeeeee"}
STATE_EDGES = {"run": "#2f7d32", "cached": "#3b5ea8", "render": "#8c8c8c"}


def _subplots(rows: int = 1, columns: int = 1, *, figsize: tuple[float, float], sharey: bool = False) -> tuple[Figure, Any]:
    """``plt.subplots`` without pyplot."""
    figure = Figure(figsize=figsize)
    return figure, figure.subplots(rows, columns, sharey=sharey)


def _to_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def training_curves_png(step_id: str, history: Mapping[str, Sequence[float]], metric: str) -> str:
    """Loss and ``metric`` per epoch, train (solid) vs validation (dashed), side by side."""
    figure, axes = _subplots(1, 2, figsize=(9.0, 3.0))
    for axis, key, label in ((axes[0], "loss", "loss"), (axes[1], metric, metric)):
        drawn = False
        for series, color, style, name in ((key, TRAIN_COLOR, "-", "train"),
                                           (f"val_{key}", VAL_COLOR, "--", "validation")):
            values = [v for v in history.get(series, []) if v is not None]
            if values:
                axis.plot(range(1, len(values) + 1), values, style, color=color, marker="o", markersize=2.5,
                          linewidth=1.5, label=name)
                drawn = True
        axis.set_title(f"{step_id}: {label}", fontsize=10)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
        if drawn:
            axis.legend(fontsize=8)
        else:
            axis.text(0.5, 0.5, f"no {label} recorded", ha="center", va="center", transform=axis.transAxes)
    figure.tight_layout()
    return _to_data_uri(figure)


# Which chart panel a gate belongs to, and how its limit is drawn there.
_GATE_PANELS = {"max_size_kb": "size", "max_accuracy_drop": "accuracy", "min_accuracy": "accuracy",
                "max_error_increase": "accuracy", "max_error": "accuracy", "max_latency_ms": "latency"}


def _gate_line(gate: Mapping[str, Any], reference: float | None) -> tuple[str, float] | None:
    """``(panel, x position)`` of a gate's limit in the targets chart, or None if it has no place there.

    ``reference`` is the trained model's metric: a drop (or an error increase) is measured from it."""
    panel = _GATE_PANELS.get(str(gate.get("name")))
    limit = gate.get("limit")
    if panel is None or limit is None:
        return None
    if gate["name"] in ("max_accuracy_drop", "max_error_increase"):
        if reference is None:
            return None
        sign = -1.0 if gate["name"] == "max_accuracy_drop" else 1.0
        return panel, reference + sign * float(limit)
    return panel, float(limit)


# Value labels sit on a white box above the gate ticks, so a tick never strikes through a number.
_LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.9}


def targets_png(baseline: Mapping[str, Any], targets: Mapping[str, Mapping[str, Any]],
                reference: float | None = None) -> str:
    """Size, accuracy and latency of every target next to the Keras baseline; gate limits as red ticks.

    Bars are green when all of the target's gates passed, red when one failed, blue when it has no gates.
    ``reference`` (the trained model's metric) places the ticks of drop gates; default: the baseline's.
    """
    if reference is None:
        reference = baseline.get("value")
    names = ["keras baseline", *targets]
    latency = baseline.get("latency_ms") or {}
    rows: list[dict[str, Any]] = [{
        "size": _kb(baseline.get("size_bytes")), "accuracy": baseline.get("value"),
        "p50": latency.get("p50"), "p95": latency.get("p95"), "color": BASELINE_COLOR, "gates": [],
    }]
    for target in targets.values():
        metrics = target.get("metrics") or {}
        gates = target.get("gates") or []
        color = NO_GATE_COLOR if not gates else (PASS_COLOR if target.get("passed") else FAIL_COLOR)
        rows.append({"size": _kb(metrics.get("size_bytes")), "accuracy": metrics.get("accuracy"),
                     "p50": metrics.get("latency_ms_p50"), "p95": metrics.get("latency_ms_p95"),
                     "color": color, "gates": gates})
    height = 1.0 + 0.45 * len(names)
    figure, axes = _subplots(1, 3, figsize=(11.0, height), sharey=True)
    positions = list(range(len(names)))
    panels = {"size": axes[0], "accuracy": axes[1], "latency": axes[2]}
    for key, title in (("size", "size (KiB)"), ("accuracy", str(baseline.get("metric") or "accuracy"))):
        axis = panels[key]
        for y, row in zip(positions, rows):
            if row[key] is not None:
                axis.barh(y, row[key], color=row["color"], height=0.6)
                axis.text(row[key], y, f" {row[key]:.4g}", va="center", fontsize=8, bbox=_LABEL_BOX, zorder=4)
            else:
                axis.text(0, y, " n/a", va="center", fontsize=8, color=BASELINE_COLOR)
        axis.set_title(title, fontsize=10)
    axis = panels["latency"]
    for y, row in zip(positions, rows):
        if row["p50"] is not None:
            axis.barh(y - 0.15, row["p50"], color=row["color"], height=0.3)
            axis.text(row["p50"], y - 0.15, f" p50 {row['p50']:.3g}", va="center", fontsize=7, bbox=_LABEL_BOX,
                      zorder=4)
        if row["p95"] is not None:
            axis.barh(y + 0.15, row["p95"], color=row["color"], alpha=0.5, height=0.3)
            axis.text(row["p95"], y + 0.15, f" p95 {row['p95']:.3g}", va="center", fontsize=7, bbox=_LABEL_BOX,
                      zorder=4)
        if row["p50"] is None and row["p95"] is None:
            axis.text(0, y, " n/a", va="center", fontsize=8, color=BASELINE_COLOR)
    latencies = [v for row in rows for v in (row["p50"], row["p95"]) if v is not None and v > 0]
    if latencies and max(latencies) / min(latencies) > 20:
        axis.set_xscale("log")  # a Keras baseline in ms next to a TFLite model in µs: both stay visible
        axis.set_xlim(min(latencies) / 3, max(latencies) * 40)  # room for the "p95 …" label right of the bar
    axis.set_title("latency per example (ms, p50 / p95)", fontsize=10)
    accuracies = [row["accuracy"] for row in rows if row["accuracy"] is not None]
    for y, row in zip(positions, rows):
        for gate in row["gates"]:
            line = _gate_line(gate, reference)
            if line is not None:
                panel, x = line
                panels[panel].plot([x, x], [y - 0.4, y + 0.4], color=FAIL_COLOR, linewidth=2.0, zorder=3)
                if panel == "accuracy":
                    accuracies.append(x)
    if accuracies:
        low = min(accuracies)
        panels["accuracy"].set_xlim(max(0.0, low - (1.0 - low) * 0.5 - 0.01), 1.0)
    for axis in axes:
        axis.grid(axis="x", alpha=0.3)
        axis.margins(x=0.25)
    panels["accuracy"].margins(x=0.0)
    axes[0].set_yticks(positions, names)
    axes[0].invert_yaxis()
    figure.tight_layout()
    return _to_data_uri(figure)


def size_accuracy_png(points: Sequence[Mapping[str, Any]], metric: str) -> str:
    """Size (KiB, log scale) against ``metric`` for every stage and target: ``{label, size_bytes, value,
    kind}`` each, Keras models as circles (joined in stage order), artifacts as squares."""
    figure, axis = _subplots(figsize=(7.5, 4.2))
    stages = [p for p in points if p.get("kind") == "keras" and p.get("value") is not None and p.get("size_bytes")]
    if len(stages) > 1:
        axis.plot([float(p["size_bytes"]) / 1024 for p in stages], [p["value"] for p in stages], "-",
                  color=BASELINE_COLOR, linewidth=1.0, zorder=1)
    for p in points:
        if p.get("value") is None or not p.get("size_bytes"):
            continue
        keras = p.get("kind") == "keras"
        x = float(p["size_bytes"]) / 1024
        axis.scatter([x], [p["value"]], marker="o" if keras else "s", s=46, zorder=2,
                     color=BASELINE_COLOR if keras else p.get("color", NO_GATE_COLOR))
        # Keras stages labelled above their point, targets below: a target of the same size and value as
        # the model it came from keeps a readable label
        axis.annotate(str(p["label"]), (x, p["value"]), textcoords="offset points", xytext=(6, 5 if keras else -12),
                      fontsize=8)
    axis.set_xscale("log")
    axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_xlabel("size (KiB, log scale)")
    axis.set_ylabel(metric)
    axis.set_title(f"size against {metric}: Keras stages (circles) and targets (squares)", fontsize=10)
    axis.grid(alpha=0.3)
    axis.margins(x=0.25, y=0.15)
    figure.tight_layout()
    return _to_data_uri(figure)


def _kb(size_bytes: Any) -> float | None:
    return None if size_bytes is None else float(size_bytes) / 1024.0


def layers_png(step_id: str, layers: Sequence[Mapping[str, Any]]) -> str:
    """Per-layer kernel sparsity (left) and non-zero / unique weight counts (right, log scale)."""
    names = [str(layer.get("layer")) for layer in layers]
    positions = list(range(len(names)))
    figure, axes = _subplots(1, 2, figsize=(9.0, 1.0 + 0.45 * max(2, len(names))), sharey=True)
    sparsity = [float(layer.get("sparsity") or 0.0) for layer in layers]
    axes[0].barh(positions, sparsity, color="#8172b2", height=0.6)
    for y, value in zip(positions, sparsity):
        axes[0].text(value, y, f" {value:.1%}", va="center", fontsize=8)
    axes[0].set_xlim(0.0, 1.15)
    axes[0].set_title(f"{step_id}: kernel sparsity", fontsize=10)
    for offset, key, color in ((-0.2, "kernel_size", "#c7c7c7"), (0.0, "nonzero", "#4c72b0"),
                               (0.2, "unique", "#dd8452")):
        values = [max(1, int(layer.get(key) or 0)) for layer in layers]
        axes[1].barh([p + offset for p in positions], values, height=0.2, color=color,
                     label={"kernel_size": "weights", "nonzero": "non-zero", "unique": "unique values"}[key])
    axes[1].set_xscale("log")
    axes[1].xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes[1].xaxis.set_minor_formatter(NullFormatter())
    axes[1].set_title("weights per layer (log scale)", fontsize=10)
    axes[1].legend(fontsize=8, loc="lower right")
    for axis in axes:
        axis.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(positions, names)
    axes[0].invert_yaxis()
    figure.tight_layout()
    return _to_data_uri(figure)


def plan_layout(steps: Sequence[Mapping[str, Any]], max_per_row: int = 5) -> dict[str, tuple[int, int]]:
    """A layered DAG layout: ``step id → (row, position in row)``.

    A step's layer is its longest path from a source. A source that only feeds later steps (a ``render``
    step feeding a ``bundle``) sits in the layer just above its first consumer instead of at the top.
    Inputs that are not steps of the report are ignored; positions keep the plan's order inside a layer,
    and a layer wider than ``max_per_row`` continues on the next row (every input still sits above).
    """
    ids = [str(step["id"]) for step in steps]
    known = set(ids)
    inputs = {str(step["id"]): [str(i) for i in step.get("inputs") or [] if str(i) in known] for step in steps}
    consumers: dict[str, list[str]] = {step_id: [] for step_id in ids}
    for step_id, parents in inputs.items():
        for parent in parents:
            consumers[parent].append(step_id)
    layer: dict[str, int] = {}

    def depth(step_id: str, visiting: frozenset[str]) -> int:
        if step_id in layer:
            return layer[step_id]
        if step_id in visiting:  # a plan has no cycles; guard anyway
            return 0
        value = 1 + max((depth(p, visiting | {step_id}) for p in inputs[step_id]), default=-1)
        layer[step_id] = value
        return value

    for step_id in ids:
        depth(step_id, frozenset())
    for step_id in ids:
        if not inputs[step_id] and consumers[step_id]:
            layer[step_id] = max(0, min(layer[c] for c in consumers[step_id]) - 1)
    # Wide layers wrap onto several rows of at most ``max_per_row`` boxes, so labels stay readable.
    members: dict[int, list[str]] = {}
    for step_id in ids:
        members.setdefault(layer[step_id], []).append(step_id)
    layout: dict[str, tuple[int, int]] = {}
    row = 0
    for depth_value in sorted(members):
        chunk = members[depth_value]
        for start in range(0, len(chunk), max_per_row):
            for position, step_id in enumerate(chunk[start:start + max_per_row]):
                layout[step_id] = (row, position)
            row += 1
    return layout


def step_state(step: Mapping[str, Any]) -> str:
    """``render`` (files written by ``tfspec build``), ``cached`` or ``run``."""
    if step.get("kind") == "render":
        return "render"
    return "cached" if step.get("cached") else "run"


def plan_graph_png(steps: Sequence[Mapping[str, Any]]) -> str:
    """The plan as a top-down DAG: one box per step (id, kind, state, duration), arrows input → step."""
    layout = plan_layout(steps)
    layers = max((r for r, _ in layout.values()), default=0) + 1
    widths = [sum(1 for r, _ in layout.values() if r == row) for row in range(layers)]
    per_row = max(widths, default=1)
    box_w, box_h, gap_x, gap_y = 2.6, 0.62, 0.35, 0.55
    total_w = per_row * (box_w + gap_x) - gap_x
    figure, axis = _subplots(figsize=(min(10.5, 0.95 * total_w + 0.3), 0.95 * layers * (box_h + gap_y) + 0.5))

    def centre(step_id: str) -> tuple[float, float]:
        row, position = layout[step_id]
        offset = (total_w - (widths[row] * (box_w + gap_x) - gap_x)) / 2
        return offset + position * (box_w + gap_x) + box_w / 2, -(row * (box_h + gap_y)) - box_h / 2

    for step in steps:
        x, y = centre(str(step["id"]))
        for parent in step.get("inputs") or []:
            if str(parent) in layout:
                px, py = centre(str(parent))
                axis.annotate("", xy=(x, y + box_h / 2), xytext=(px, py - box_h / 2),
                              arrowprops={"arrowstyle": "-|>", "color": "#a0a0a0", "linewidth": 0.8,
                                          "shrinkA": 0, "shrinkB": 1, "mutation_scale": 8})
    for step in steps:
        state = step_state(step)
        x, y = centre(str(step["id"]))
        axis.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                      boxstyle="round,pad=0.0,rounding_size=0.08", zorder=3,
                                      facecolor=STATE_COLORS[state], edgecolor=STATE_EDGES[state], linewidth=1.2))
        duration = step.get("duration_s")
        detail = {"render": "from build", "cached": "cached"}.get(state, "ran")
        if state == "run" and duration is not None:
            detail = f"ran {float(duration):.2f} s"
        axis.text(x, y + 0.12, _shorten(str(step["id"]), 30), ha="center", va="center", fontsize=8,
                  fontweight="bold", zorder=4)
        axis.text(x, y - 0.14, f"{step.get('kind')} · {detail}", ha="center", va="center", fontsize=7.5, zorder=4)
    axis.set_xlim(-0.1, total_w + 0.1)
    axis.set_ylim(-(layers * (box_h + gap_y)) + gap_y - 0.1, 0.1)
    axis.set_aspect("equal")
    axis.axis("off")
    handles = [FancyBboxPatch((0, 0), 1, 1, facecolor=STATE_COLORS[s], edgecolor=STATE_EDGES[s], label=label)
               for s, label in (("run", "ran"), ("cached", "cached (not re-run)"), ("render", "rendered by build"))]
    axis.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8, frameon=False)
    return _to_data_uri(figure)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
