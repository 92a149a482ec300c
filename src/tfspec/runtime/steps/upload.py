"""``upload`` step: the bundled SavedModel becomes a version of the target's model store.

Only from a run that passed: the step's inputs are every gate of the run (each target's ``verify`` and
``compare``, the ``evaluate`` step's naive baseline), and when any of them missed nothing is pushed and the store is left as
it was (``upload.json`` says which gates withheld it; the run exits 1 for those gates). Before anything is pushed, every version the served configuration names (policy, labels) must be in
the store or be this one: TF Serving refuses a label of a version it cannot load, and every pod would
crash-loop. Then the version is uploaded so that no server sees it half-written, and the store is pruned
to ``keep_versions`` (named versions are kept). See :mod:`tfspec.runtime.model_store`.
"""

from __future__ import annotations

import json
from typing import Any

from tfspec.runtime.context import StepContext
from tfspec.runtime.errors import StepError
from tfspec.runtime.model_store import (PinnedVersions, StoreError, open_store, prune_versions, upload_version,
                                        versions_in)

__all__ = ["run", "missed_gates"]

# the steps that gate a release, and the file their gates are in
_GATE_FILES = {"verify": "verify.json", "compare": "compare.json"}


def missed_gates(ctx: StepContext) -> list[str]:
    """``<target>: <gate>`` for every gate among the step's inputs that missed (``verify``, ``compare``), and
    ``<model> model: beats_naive_baseline`` for a model no better than the naive baseline (``evaluate``)."""
    missed = []
    for step_id in ctx.step.inputs:
        step = ctx.plan.step(step_id)
        if step.kind in _GATE_FILES:
            checked = json.loads((ctx.inputs[step_id] / _GATE_FILES[step.kind]).read_text("utf-8"))
            missed += [f"{step.target}: {g['name']}" for g in checked["gates"] if not g["passed"]]
        elif step.kind == "evaluate":
            naive = json.loads((ctx.inputs[step_id] / "evaluation.json").read_text("utf-8")).get("naive_baseline")
            if naive and naive["on_failure"] == "fail":
                missed += [f"{label} model: beats_naive_baseline" for label in naive["failed"]]
    return missed


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    key = tuple(p.key_path)
    bundle = next(i for i in ctx.step.inputs if ctx.plan.step(i).kind == "bundle")
    model_dir = ctx.inputs[bundle] / p.model_dir
    withheld = missed_gates(ctx)
    if withheld:
        ctx.log(f"  {p.base_path}/{p.version}: not uploaded, the run missed {', '.join(withheld)}; the store is "
                "unchanged")
        result = {"base_path": p.base_path, "version": p.version, "uploaded": False, "deleted": [],
                  "withheld_by": withheld}
        ctx.write_json("upload.json", result)
        return result
    try:
        store = open_store(p.base_path, p.endpoint_url, p.region)
        if p.pinned:
            store = PinnedVersions(store)
        present = set(versions_in(store))
        missing = sorted(set(p.required_versions) - present - {p.version})
        if missing:
            raise StoreError(f"the store lacks version(s) {', '.join(map(str, missing))}, which the serving "
                             f"configuration names; nothing was uploaded")
        uploaded = upload_version(store, model_dir, p.version, ctx.plan.step(bundle).fingerprint)
        deleted = prune_versions(store, p.keep_versions, p.required_versions)
        kept = versions_in(store)
    except StoreError as error:
        raise StepError(key + ("base_path",), str(error),
                        "upload the named versions first, or change the version labels / policy") from None
    ctx.log(f"  {p.base_path}/{p.version}: " + ("uploaded" if uploaded else "already there")
            + (f"; removed version(s) {', '.join(map(str, deleted))}" if deleted else ""))
    result = {"base_path": p.base_path, "version": p.version, "uploaded": uploaded, "deleted": deleted,
              "versions": kept}
    ctx.write_json("upload.json", result)
    return result
