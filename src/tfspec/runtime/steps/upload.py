"""``upload`` step: the bundled SavedModel becomes a version of the target's model store.

Before anything is pushed, every version the served configuration names (policy, labels) must be in
the store or be this one: TF Serving refuses a label of a version it cannot load, and every pod would
crash-loop. Then the version is uploaded so that no server sees it half-written, and the store is pruned
to ``keep_versions`` (named versions are kept). See :mod:`tfspec.runtime.model_store`.
"""

from __future__ import annotations

from typing import Any

from tfspec.runtime.context import StepContext
from tfspec.runtime.errors import StepError
from tfspec.runtime.model_store import (PinnedVersions, StoreError, open_store, prune_versions, upload_version,
                                        versions_in)

__all__ = ["run"]


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    key = tuple(p.key_path)
    bundle = next(i for i in ctx.step.inputs if ctx.plan.step(i).kind == "bundle")
    model_dir = ctx.inputs[bundle] / p.model_dir
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
