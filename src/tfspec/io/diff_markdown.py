"""The Markdown summary of a :class:`~.spec_diff.DiffResult`: one overview table, then one section per spec
that changed. Deterministic (sorted, no clock), short (long lists are cut with a count, file lists are in
``<details>`` blocks), and safe to paste: every value goes through :func:`.markdown.code`."""

from __future__ import annotations

import math
from typing import Any

from .markdown import code, details, listing, plural, table
from .spec_diff import DiffResult, Finding, SpecDiff, SpecSide

__all__ = ["render_summary", "KEYS_SHOWN", "KEYS_MAX", "FILES_MAX", "STEPS_SHOWN", "FINDINGS_SHOWN", "SPECS_DETAILED"]

KEYS_SHOWN = 15
"""Key changes in a spec's table; the rest are in a ``<details>`` block."""
KEYS_MAX = 200
FILES_MAX = 100
STEPS_SHOWN = 12
FINDINGS_SHOWN = 10
SPECS_DETAILED = 50
"""Specs given a section of their own; the overview table lists every spec."""
DIAGNOSTIC_LIMIT = 200
"""A warning or error line is tfspec's message (values in it are already cut to 80 characters); the whole
line is cut here, since a policy's message is the policy author's text."""

_STATUS = {"added": "added", "removed": "removed", "invalid": "**invalid** at head", "fixed": "fixed (invalid at base)",
           "changed": "changed", "moved": "moved", "unchanged": "unchanged"}
_NONE = "—"


def _cell(text: str | None) -> str:
    return _NONE if text is None else code(text, in_table=True)


def _count(value: int) -> str:
    return f"{value:,}" if value else _NONE


def _spec_label(diff: SpecDiff, in_table: bool = False) -> str:
    return code(diff.name, in_table=in_table) if diff.name else "*(unknown)*"


def _overview_row(diff: SpecDiff) -> list[str]:
    status = _status(diff, in_table=True)
    files = len(diff.files_changed) + len(diff.files_added) + len(diff.files_removed)
    images = len(diff.images)
    steps = _NONE
    head = diff.head
    if diff.status == "added" or diff.status == "fixed":
        files = len(head.files) if head else 0
        images = len(head.images) if head else 0
        steps = f"all {len(head.steps)}" if head and head.steps else _NONE
    elif diff.status == "removed" and diff.base is not None:
        files, images = len(diff.base.files), len(diff.base.images)
    elif diff.status == "changed" and head is not None:
        steps = f"{len(diff.steps_rerun):,} of {len(head.steps):,}"
    warnings = f"+{len(diff.warnings_new)} −{len(diff.warnings_gone)}" if diff.warnings_new or diff.warnings_gone else _NONE
    return [code(diff.path, in_table=True), _spec_label(diff, in_table=True), status, _count(len(diff.keys)),
            _count(files), _count(images), steps, warnings]


def _finding_lines(findings: tuple[Finding, ...], prefix: str = "") -> list[str]:
    lines = [f"- {prefix}{code(f.line, limit=DIAGNOSTIC_LIMIT)}" for f in findings[:FINDINGS_SHOWN]]
    if len(findings) > FINDINGS_SHOWN:
        lines.append(f"- {prefix}and {len(findings) - FINDINGS_SHOWN:,} more")
    return lines


def _key_rows(diff: SpecDiff) -> list[list[str]]:
    return [[code(k.path, in_table=True), _cell(k.base), _cell(k.head)] for k in diff.keys]


def _keys_section(diff: SpecDiff) -> list[str]:
    if not diff.keys:
        return []
    lines = [f"**Spec** (resolved: bases, project file and overlay applied): {plural(len(diff.keys), 'key path')} "
             "changed.", ""]
    rows = _key_rows(diff)
    header = ["key", "base", "head"]
    lines += table(header, rows[:KEYS_SHOWN])
    rest = rows[KEYS_SHOWN:KEYS_MAX]
    if rest:
        more = len(rows) - KEYS_SHOWN
        body = table(header, rest)
        if len(rows) > KEYS_MAX:
            body += ["", f"and {len(rows) - KEYS_MAX:,} more"]
        lines += ["", *details(f"{plural(more, 'more key path')}", body)]
    if any(k.path == "name" for k in diff.keys):
        lines += ["", "The model's name changed: its output folder, images and Kubernetes objects get new names."]
    return lines + [""]


def _standards_section(diff: SpecDiff) -> list[str]:
    if not diff.standards:
        return []
    items = [f"{code(path)} ({how})" for path, how in diff.standards]
    return [f"**Standards files** (bases, project file, policies): {listing(items, FINDINGS_SHOWN)}.", ""]


def _images_section(diff: SpecDiff, base: SpecSide | None, head: SpecSide | None) -> list[str]:
    if diff.status in ("added", "fixed") and head is not None:
        changes = [(repository, (), tags) for repository, tags in head.images.items()]
    elif diff.status == "removed" and base is not None:
        changes = [(repository, tags, ()) for repository, tags in base.images.items()]
    else:
        changes = [(c.repository, c.base, c.head) for c in diff.images]
    if not changes:
        return []
    rows = [[code(repository, in_table=True), _tags(old), _tags(new)] for repository, old, new in changes]
    intro = ("**Images** the Kubernetes manifests name (a new content tag is an image to build and push before "
             "the change deploys):")
    return [intro, "", *table(["image", "base", "head"], rows), ""]


def _tags(tags: tuple[str, ...]) -> str:
    return ", ".join(code(tag, in_table=True) for tag in tags) if tags else _NONE


def _steps_section(diff: SpecDiff) -> list[str]:
    head = diff.head
    if head is None or not head.ok:
        return []
    if diff.status in ("added", "fixed"):
        return [f"**Plan**: every step runs ({len(head.steps):,}): "
                f"{listing([code(s) for s, _ in head.steps], STEPS_SHOWN)}.", ""]
    if not diff.steps_rerun and not diff.steps_removed:
        return []
    new = [step for step in diff.steps_rerun if step in diff.steps_new]
    changed = [step for step in diff.steps_rerun if step not in diff.steps_new]
    if diff.steps_rerun:
        text = (f"**Plan**: {len(diff.steps_rerun):,} of {len(head.steps):,} steps run (the base's step cache "
                "does not hold them):")
        parts = []
        if changed:
            parts.append(f" {len(changed):,} with a new fingerprint: {listing([code(s) for s in changed], STEPS_SHOWN)}")
        if new:
            parts.append(f" {len(new):,} new: {listing([code(s) for s in new], STEPS_SHOWN)}")
        text += ";".join(parts) + "."
    else:
        text = "**Plan**: no step runs again (the base's step cache holds every one)."
    if diff.steps_removed:
        text += f" Steps gone: {listing([code(s) for s in diff.steps_removed], STEPS_SHOWN)}."
    return [text, ""]


def _warnings_section(diff: SpecDiff) -> list[str]:
    if not diff.warnings_new and not diff.warnings_gone:
        return []
    lines = [f"**Warnings** (policies and build): {len(diff.warnings_new):,} new, {len(diff.warnings_gone):,} gone.", ""]
    lines += _finding_lines(diff.warnings_new, "new: ")
    lines += _finding_lines(diff.warnings_gone, "gone: ")
    return lines + [""]


def _errors_section(diff: SpecDiff) -> list[str]:
    lines = []
    for label, side in (("base", diff.base), ("head", diff.head)):
        if side is not None and not side.ok:
            lines += [f"**Invalid at {label}** ({plural(len(side.errors), 'problem')}; `tfspec build` fails there):", ""]
            lines += _finding_lines(side.errors)
            lines.append("")
    return lines


def _files_section(diff: SpecDiff) -> list[str]:
    if diff.status in ("added", "fixed") and diff.head is not None:
        changed, added, removed = (), tuple(sorted(diff.head.files)), ()
    elif diff.status == "removed" and diff.base is not None:
        changed, added, removed = (), (), tuple(sorted(diff.base.files))
    else:
        changed, added, removed = diff.files_changed, diff.files_added, diff.files_removed
    rows = [[code(p, in_table=True), how] for how, paths in (("changed", changed), ("added", added), ("removed", removed))
            for p in paths]
    if not rows:
        if diff.files_header_only:
            return [f"Generated files: {plural(len(diff.files_header_only), 'file differs', 'files differ')} only in "
                    "the header's spec sha256.", ""]
        return []
    folder = (diff.head.dist if diff.head and diff.head.dist else None) or (diff.base.dist if diff.base else None)
    body = [f"In the output folder {code(folder + '/')}:", ""] if folder else []
    body += table(["file", "change"], rows[:FILES_MAX])
    if len(rows) > FILES_MAX:
        body += ["", f"and {len(rows) - FILES_MAX:,} more"]
    # the summary line is raw HTML: counts only, never a name
    summary = f"Generated files: {len(changed):,} changed, {len(added):,} added, {len(removed):,} removed"
    if diff.files_header_only:
        summary += f" ({len(diff.files_header_only):,} more differ only in their header's spec sha256)"
    return [*details(summary, body), ""]


# --- metrics from report.json -------------------------------------------------------------------------


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        return _NONE
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def _change(old: Any, new: Any) -> str:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new)):
        return _NONE
    delta = new - old
    if not math.isfinite(delta):
        return _NONE
    if delta == 0:
        return "0"
    return f"{delta:+,}" if isinstance(delta, int) else f"{delta:+.4g}"


def _targets(report: Any) -> dict[str, Any]:
    targets = report.get("targets") if isinstance(report, dict) else None
    return {k: v for k, v in targets.items() if isinstance(k, str) and isinstance(v, dict)} if isinstance(targets, dict) else {}


def _baseline(report: Any) -> dict[str, Any]:
    """``{metric: value}`` of the report's trained model (``baseline``: ``{"metric": "accuracy", "value": ...}``)."""
    baseline = report.get("baseline") if isinstance(report, dict) else None
    if not isinstance(baseline, dict) or not isinstance(baseline.get("metric"), str):
        return {}
    return {baseline["metric"]: baseline.get("value")}


def _metrics(entry: dict[str, Any]) -> dict[str, Any]:
    """A target's metrics, and with a released model (``targets[].released``) its figures in this run as
    ``released.<metric>`` and ``released.worse_by`` (positive: the candidate is worse than the released one)."""
    metrics = entry.get("metrics")
    out = {k: v for k, v in metrics.items() if isinstance(k, str)} if isinstance(metrics, dict) else {}
    released = entry.get("released")
    if isinstance(released, dict) and released.get("found") is True:
        figures, change = released.get("metrics"), released.get("change")
        metric = released.get("metric")
        if isinstance(figures, dict) and isinstance(metric, str) and metric in figures:
            out[f"released.{metric}"] = figures[metric]
        if isinstance(change, dict) and "worse_by" in change:
            out["released.worse_by"] = change["worse_by"]
    return out


def _gates(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    gates = entry.get("gates")
    if not isinstance(gates, list):
        return {}
    return {g["name"]: g for g in gates if isinstance(g, dict) and isinstance(g.get("name"), str)}


def _gate_value(gate: dict[str, Any] | None) -> str:
    if gate is None:
        return _NONE
    passed = gate.get("passed")
    verdict = "passed" if passed is True else "**missed**" if passed is False else ""
    return f"{_number(gate.get('value'))} {verdict}".strip()


def _metrics_section(diff: SpecDiff) -> list[str]:
    base, head = diff.base, diff.head
    have = [side for side in (base, head) if side is not None and side.report is not None]
    if not have:
        return []
    if len(have) == 1 or base is None or head is None:
        side = have[0]
        label = "base" if side is base else "head"
        return [f"**Metrics**: only the {label} has a run report ({code(side.report_place or '')}); nothing to "
                "compare it with.", ""]
    assert base.report is not None and head.report is not None
    lines = [f"**Metrics** (run reports: base {code(base.report_place or '')}, head {code(head.report_place or '')}):", ""]
    for side, label in ((base, "base"), (head, "head")):
        recorded = side.report.get("spec") if isinstance(side.report.get("spec"), dict) else {}
        if recorded.get("sha256") not in (None, side.spec_sha256):
            lines += [f"The {label} report was made from another version of the spec: it may not reflect this "
                      "revision.", ""]
    base_targets, head_targets = _targets(base.report), _targets(head.report)
    rows = []
    old_model, new_model = _baseline(base.report), _baseline(head.report)
    for metric in sorted(set(old_model) | set(new_model)):  # the trained (uncompressed) model, as verify measured it
        rows.append(["*(trained model)*", code(metric, in_table=True), _number(old_model.get(metric)),
                     _number(new_model.get(metric)), _change(old_model.get(metric), new_model.get(metric))])
    for name in sorted(set(base_targets) | set(head_targets)):
        old, new = _metrics(base_targets.get(name, {})), _metrics(head_targets.get(name, {}))
        for metric in sorted(set(old) | set(new)):
            rows.append([code(name, in_table=True), code(metric, in_table=True), _number(old.get(metric)),
                         _number(new.get(metric)), _change(old.get(metric), new.get(metric))])
    if rows:
        lines += [*table(["target", "metric", "base", "head", "change"], rows), ""]
    gate_rows = []
    for name in sorted(set(base_targets) | set(head_targets)):
        old, new = _gates(base_targets.get(name, {})), _gates(head_targets.get(name, {}))
        for gate in sorted(set(old) | set(new)):
            limits = [_number(g.get("limit")) for g in (old.get(gate), new.get(gate)) if g is not None]
            limit = limits[0] if len(set(limits)) == 1 else " → ".join(limits)
            gate_rows.append([code(name, in_table=True), code(gate, in_table=True), limit,
                              _gate_value(old.get(gate)), _gate_value(new.get(gate))])
    if gate_rows:
        lines += ["**Gates**:", "", *table(["target", "gate", "limit", "base", "head"], gate_rows), ""]
    verdicts = [("passed" if s.report.get("passed") is True else "**failed**" if s.report.get("passed") is False else _NONE)
                for s in (base, head)]
    lines += [f"Run verdict: base {verdicts[0]}, head {verdicts[1]}.", ""]
    return lines


# --- the document -------------------------------------------------------------------------------------


def _status(diff: SpecDiff, in_table: bool = False) -> str:
    if diff.moved_from is None:
        return _STATUS[diff.status]
    moved = f"moved from {code(diff.moved_from, in_table=in_table)}"
    return moved if diff.status == "moved" else f"{_STATUS[diff.status]}, {moved}"


def _heading(diff: SpecDiff) -> str:
    return f"### {_spec_label(diff)} in {code(diff.path)}: {_status(diff)}"


def _spec_section(diff: SpecDiff) -> list[str]:
    lines = [_heading(diff), ""]
    head = diff.head
    if diff.status in ("added", "fixed") and head is not None:
        targets = ", ".join(f"{code(name)} ({code(kind)})" for name, kind in head.targets)
        lines += [f"Model {code(head.name or '')} version {head.version}; targets: {targets or _NONE}.", ""]
    if diff.status == "removed" and diff.base is not None and diff.base.dist:
        lines += [f"Its output folder {code(diff.base.dist)} is no longer generated (`tfspec build FOLDER --prune` "
                  "deletes it).", ""]
    lines += _errors_section(diff)
    lines += _standards_section(diff)
    lines += _keys_section(diff)
    lines += _images_section(diff, diff.base, diff.head)
    lines += _steps_section(diff)
    lines += _warnings_section(diff)
    lines += _metrics_section(diff)
    lines += _files_section(diff)
    return lines


def render_summary(result: DiffResult) -> str:
    """The summary as Markdown text (ends with one newline)."""
    where = code(result.folder)
    title = (f"## tfspec diff: {where} from {code(result.base.name)} ({code(result.base.commit[:12])}) to "
             f"{code(result.head.name)} ({code(result.head.commit[:12])})")
    lines = [title, ""]
    if result.environment:
        lines += [f"Environment overlay: {code(result.environment)}.", ""]
    counts = [f"{result.count(status):,} {status}" for status in ("changed", "added", "removed", "invalid", "fixed",
                                                                   "moved") if result.count(status)]
    unchanged = [d for d in result.specs if d.status == "unchanged"]
    lines.append(f"{plural(len(result.specs), 'spec')}: " + ", ".join(counts + [f"{len(unchanged):,} unchanged"]) + ".")
    lines.append("")
    shown = [d for d in result.specs if d.status != "unchanged"]
    if shown:
        lines += table(["spec", "model", "status", "spec keys", "files", "images", "steps to run", "warnings"],
                       [_overview_row(d) for d in shown])
        lines.append("")
    if unchanged:
        lines += [f"Unchanged: {listing([code(d.path) for d in unchanged], 20)}.", ""]
    for diff in shown[:SPECS_DETAILED]:
        lines += _spec_section(diff)
    if len(shown) > SPECS_DETAILED:
        lines += [f"Sections for {len(shown) - SPECS_DETAILED:,} more specs are left out (the table above lists them).", ""]
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"
