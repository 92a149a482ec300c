"""``tfspec fleet FOLDER``: one table of every spec below a folder — what a platform team reads before a release.

For each spec (found as folder builds find them): model, version, targets with their image, GPUs and
gates, the gates' last measured values (from ``<dist>/<name>/report.json`` when a run left one),
policy warnings, problems, and staleness: ``build`` is ``current`` / ``stale`` / ``not built`` (the
committed output folder against a fresh compile, as ``build --check`` compares) and ``run`` is
``current`` / ``stale`` (the last run's spec sha256 differs from the spec now) / ``none``.

Outputs are looked for where the commands write them (:func:`output_candidates`): with ``--out`` /
``--dist`` there only; otherwise ``build/<name>`` and ``dist/<name>`` beside the spec (``cd`` into its
folder, then ``tfspec build`` / ``tfspec run``: the tutorial's layout), then under the current folder
(``tfspec build specs/``, or a command given the spec's path from here).

Reads files only; writes nothing (the CLI writes the page). No TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tfspec.base.outputs import MANIFEST
from tfspec.compiler.images import built_reference
from tfspec.compiler.naming import placed_files
from tfspec.compiler.pipeline import compile_spec
from tfspec.compiler.resolve import ResolvedSpec
from tfspec.compiler.targets import Workload, target_image, target_kind, target_workload
from tfspec.spec.files import FileProblem, read_regular_file

from .batch import build_producer, discover_specs, output_dir_name
from .tree_diff import diff_tree

__all__ = ["FLEET_VERSION", "Gate", "FleetTarget", "FleetRow", "Fleet", "collect_fleet", "fleet_target",
           "output_candidates"]

FLEET_VERSION = 1
_GATE_UNITS = {"max_accuracy_drop": "", "min_accuracy": "", "max_size_kb": " KB", "max_latency_ms": " ms"}


@dataclasses.dataclass(frozen=True)
class Gate:
    """A quality gate of a target and, when a run measured it, its last value."""

    name: str
    limit: float
    value: float | None = None
    passed: bool | None = None


@dataclasses.dataclass(frozen=True)
class FleetTarget:
    """One target of a spec.

    Attributes:
        image: the image reference its manifests name, or what it ships when its kind builds no image (a
            ``.tflite`` file, a model store folder); ``-`` when neither.
        gpus: ``<GPUs>/<replica or worker> × <pods>`` (a ``min–max`` range when autoscaled); ``-`` when the
            target runs no pods.
    """

    name: str
    kind: str
    image: str
    gpus: str
    gates: tuple[Gate, ...]


@dataclasses.dataclass(frozen=True)
class FleetRow:
    """One spec of the fleet."""

    path: str
    name: str | None
    version: int | None
    environment: str | None
    targets: tuple[FleetTarget, ...]
    build: str
    """``current``, ``stale``, ``not built`` or ``invalid``."""
    run: str
    """``current``, ``stale``, ``none`` (no report.json) or ``-`` (invalid spec)."""
    run_passed: bool | None
    warnings: tuple[str, ...]
    problems: tuple[str, ...]
    sources: tuple[str, ...]
    """Project file, base specs and policy files the spec draws on."""
    build_dir: str | None = None
    """The output folder compared (None: not found in any place a build writes to)."""
    dist_dir: str | None = None
    """The run output folder whose report.json was read (None: no run found)."""


@dataclasses.dataclass(frozen=True)
class Fleet:
    root: str
    out_root: str
    dist_root: str
    environment: str | None
    rows: tuple[FleetRow, ...]

    def count(self, **match: Any) -> int:
        return sum(1 for row in self.rows if all(getattr(row, k) == v for k, v in match.items()))

    def to_json(self) -> dict[str, Any]:
        return {"fleet_version": FLEET_VERSION, "root": self.root, "out_root": self.out_root,
                "dist_root": self.dist_root, "environment": self.environment,
                "specs": [dataclasses.asdict(row) for row in self.rows]}


def _measured_gates(report: dict[str, Any] | None, target: str) -> dict[str, dict[str, Any]]:
    """A target's gates as the last run measured them, by name. report.json is untrusted input (a file in the
    dist folder anyone can edit): anything not shaped as ``run`` writes it is ignored, never a crash."""
    targets = report.get("targets") if report is not None else None
    entry = targets.get(target) if isinstance(targets, dict) else None
    gates = entry.get("gates") if isinstance(entry, dict) else None
    if not isinstance(gates, list):
        return {}
    return {g["name"]: g for g in gates if isinstance(g, dict) and isinstance(g.get("name"), str)}


def fleet_target(resolved: ResolvedSpec, target: Any, report: dict[str, Any] | None,
                 files: Mapping[str, str]) -> FleetTarget:
    """One target's row, from what its kind says it builds and runs (``TargetKind.image``, ``workload``,
    ``shipped``) and its gates as the last run measured them."""
    measured = _measured_gates(report, target.name)
    gates = []
    for name in _GATE_UNITS:
        limit = getattr(target.gates, name, None) if hasattr(target, "gates") else None
        if limit is None:
            continue
        got = measured.get(name) or {}
        value = got.get("value") if isinstance(got.get("value"), (int, float)) and not isinstance(got.get("value"), bool) \
            else None
        gates.append(Gate(name, float(limit), value, got.get("passed") if isinstance(got.get("passed"), bool) else None))
    source, shipped = target_image(target), target_kind(target.kind).shipped
    if source is not None:  # the reference its manifests name, as `tfspec images` builds it
        image = built_reference(source.explicit, files[f"{target.name}/Dockerfile"])
    else:
        image = shipped(resolved, target) if shipped is not None else "-"
    return FleetTarget(target.name, target.kind, image, _gpus(target_workload(target)), tuple(gates))


def _gpus(workload: Workload | None) -> str:
    """``<GPUs>/<pod> × <pods>``, the pods as a range when an autoscaler sets them; ``-`` without pods."""
    if workload is None:
        return "-"
    pods = str(workload.replicas) if workload.replicas == workload.max_replicas else \
        f"{workload.replicas}–{workload.max_replicas}"
    return f"{workload.gpus}/{workload.unit} × {pods}"


_REPORT_BYTES = 64 * 1024 * 1024  # a run's report.json is kilobytes


def _read_report(path: Path) -> dict[str, Any] | None:
    """The last run's report.json, or None when it is missing, not JSON, too large, too deeply nested or not
    shaped as a report (it is read, never trusted)."""
    try:
        data = json.loads(read_regular_file(path, _REPORT_BYTES).decode("utf-8"))
    except (FileProblem, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("spec"), dict) else None


BUILD_ROOT = "build"
DIST_ROOT = "dist"


def output_candidates(spec: Path, folder: str, given: Path | None, default: str) -> list[Path]:
    """Where a command put a spec's output folder ``folder``: ``<given>/<folder>`` when the user named the
    root; else beside the spec (what ``tfspec build`` / ``run`` write when run in the spec's folder), then
    under the current folder."""
    if given is not None:
        return [given / folder]
    beside = spec.parent / default / folder
    here = Path(default) / folder
    return [beside] if os.path.abspath(beside) == os.path.abspath(here) else [beside, here]


def collect_fleet(root: str | Path, out_root: str | Path | None = None, dist_root: str | Path | None = None,
                  env: str | None = None) -> Fleet:
    """Compile every spec below ``root`` (nothing is written) and gather the fleet table. ``out_root`` /
    ``dist_root``: the roots the outputs are under; None: where the commands write them by default."""
    root = Path(root)
    given_out = Path(out_root) if out_root is not None else None
    given_dist = Path(dist_root) if dist_root is not None else None
    rows = []
    excluded = [given_out] if given_out is not None else [Path(BUILD_ROOT)]
    for spec in discover_specs(root, exclude=excluded):
        result = compile_spec(spec, env=env)
        if not result.ok or result.resolved is None:
            rows.append(FleetRow(str(spec), None, None, env, (), "invalid", "-", None, (),
                                 tuple(d.format() for d in result.diagnostics), ()))
            continue
        resolved = result.resolved
        folder = output_dir_name(resolved.spec.name, env)
        out_dir = next((d for d in output_candidates(spec, folder, given_out, BUILD_ROOT) if (d / MANIFEST).is_file()),
                       None)
        if out_dir is None:
            build = "not built"
        else:
            build = "stale" if diff_tree(out_dir, placed_files(result.files, spec, out_dir),
                                         build_producer(resolved.spec.name, env)) else "current"
        dist_dir, report = None, None
        for candidate in output_candidates(spec, folder, given_dist, DIST_ROOT):
            report = _read_report(candidate / "report.json")
            if report is not None:
                dist_dir = candidate
                break
        if report is None:
            run, passed = "none", None
        else:
            same = report["spec"].get("sha256") == resolved.spec_sha256  # compared, never shown
            run = "current" if same else "stale"
            passed = report.get("passed") if isinstance(report.get("passed"), bool) else None
        sources = tuple(os.path.relpath(s) for s in resolved.sources)
        rows.append(FleetRow(str(spec), resolved.spec.name, resolved.spec.version, env,
                             tuple(fleet_target(resolved, t, report, result.files) for t in resolved.spec.targets),
                             build, run, passed, tuple(w.format() for w in result.warnings), (), sources,
                             str(out_dir) if out_dir is not None else None,
                             str(dist_dir) if dist_dir is not None else None))
    default_place = "beside each spec, or under the current folder"
    return Fleet(str(root), str(given_out) if given_out is not None else f"{BUILD_ROOT}/ ({default_place})",
                 str(given_dist) if given_dist is not None else f"{DIST_ROOT}/ ({default_place})", env, tuple(rows))
