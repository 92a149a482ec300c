"""The fleet page: one self-contained HTML file (no scripts, no network) laid out from a :class:`Fleet`.

Like the run report, every value is computed here and the template ``fleet/fleet.html.j2`` only lays it
out (the one Jinja environment, :mod:`tfspec.base.templating`, escapes ``*.html.j2`` templates: spec text
cannot inject markup). ``write_fleet_html`` writes atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfspec.base.outputs import check_replaceable_file
from tfspec.base.atomic import write_text_atomic
from tfspec.base.templating import environment
from tfspec.base.versions import TFSPEC_VERSION

from .fleet import Fleet, FleetRow, Gate

__all__ = ["render_fleet_html", "write_fleet_html", "fleet_context"]

TEMPLATE = "fleet/fleet.html.j2"
_STATE_CLASS = {"current": "pass", "stale": "fail", "not built": "warn", "invalid": "fail", "none": "neutral",
                "-": "neutral"}


def _number(value: float) -> str:
    return f"{value:.4g}"


def _gate(gate: Gate) -> dict[str, Any]:
    if gate.value is None:
        state, measured = "neutral", "not measured"
    else:
        state, measured = ("pass" if gate.passed else "fail"), _number(gate.value)
    return {"name": gate.name, "limit": _number(gate.limit), "measured": measured, "state": state}


def _row(row: FleetRow) -> dict[str, Any]:
    return {
        "path": row.path, "name": row.name or "-", "version": row.version if row.version is not None else "-",
        "targets": [{"name": t.name, "kind": t.kind, "image": t.image, "gpus": t.gpus,
                     "gates": [_gate(g) for g in t.gates]} for t in row.targets],
        "build": row.build, "build_class": _STATE_CLASS[row.build], "build_dir": row.build_dir or "",
        "dist_dir": row.dist_dir or "",
        "run": row.run, "run_class": _STATE_CLASS[row.run] if row.run_passed is not False else "fail",
        "run_note": "" if row.run_passed is None else (" · gates passed" if row.run_passed else " · gates missed"),
        "warnings": list(row.warnings), "problems": list(row.problems), "sources": list(row.sources),
    }


def fleet_context(fleet: Fleet) -> dict[str, Any]:
    rows = [_row(r) for r in fleet.rows]
    return {
        "tfspec_version": TFSPEC_VERSION, "root": fleet.root, "out_root": fleet.out_root, "dist_root": fleet.dist_root,
        "environment": fleet.environment or "", "rows": rows,
        "totals": {"specs": len(rows), "invalid": fleet.count(build="invalid"), "stale": fleet.count(build="stale"),
                   "not_built": fleet.count(build="not built"), "run_stale": fleet.count(run="stale"),
                   "never_run": fleet.count(run="none"), "warnings": sum(len(r.warnings) for r in fleet.rows)},
        # green only for what is known to be good: a spec never built (or never run) is not "0 stale"
        "verdicts": _verdicts(fleet),
    }


def _verdicts(fleet: Fleet) -> dict[str, str]:
    """The header badges' classes: ``fail`` for a known problem, ``neutral`` where some state is unknown
    (a spec not built, never run, or invalid and so not compared), ``pass`` only when every spec is known good."""
    unknown_build = fleet.count(build="not built") + fleet.count(build="invalid")
    unknown_run = fleet.count(run="none") + fleet.count(run="-")
    return {
        "stale": "fail" if fleet.count(build="stale") else ("neutral" if unknown_build or not fleet.rows else "pass"),
        "runs": "fail" if fleet.count(run="stale") else ("neutral" if unknown_run or not fleet.rows else "pass"),
    }


def render_fleet_html(fleet: Fleet) -> str:
    return environment().get_template(TEMPLATE).render(**fleet_context(fleet))


_GENERATOR = b'<meta name="generator" content="tfspec '


def _is_fleet_page(head: bytes) -> bool:
    return _GENERATOR in head and b"tfspec fleet</title>" in head


def write_fleet_html(fleet: Fleet, path: Path) -> Path:
    """Write the page to ``path`` atomically (a temp file in the same folder, then a rename); an existing
    file is replaced only when it is empty or an earlier fleet page (``--html README.md`` is refused)."""
    path = Path(path)
    check_replaceable_file(path, "--html", "a tfspec fleet page", _is_fleet_page)
    return write_text_atomic(path, render_fleet_html(fleet))
