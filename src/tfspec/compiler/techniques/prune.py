"""prune: magnitude pruning (``compress.<i>.prune``)."""

from __future__ import annotations

from typing import Any

from tfspec.plan import PruneParams
from tfspec.spec.compression import PruneStage
from tfspec.base.errors import Diagnostic

from ..resolve import ResolvedSpec
from ..inputs import InputDigests
from .registry import Check, Checks, NotAfter, Seen, Technique, register

__all__ = ["TECHNIQUE"]


def params(resolved: ResolvedSpec, index: int, stage: PruneStage, common: dict[str, Any],
           digests: InputDigests | None) -> PruneParams:
    m_by_n = stage.sparsity_m_by_n
    return PruneParams(**common, schedule=stage.schedule,
                       target_sparsity=1.0 - m_by_n[0] / m_by_n[1] if m_by_n else stage.target_sparsity,
                       initial_sparsity=stage.initial_sparsity, begin_step=stage.begin_step, end_step=stage.end_step,
                       frequency=stage.frequency, sparsity_m_by_n=list(m_by_n) if m_by_n else None,
                       skip_layers=list(stage.skip_layers), fine_tune_epochs=stage.fine_tune_epochs)


def _sparsity_does_not_shrink(r: ResolvedSpec, index: int, stage: PruneStage, seen: Seen) -> Diagnostic | None:
    earlier = [s for s in r.spec.compression[:index] if isinstance(s, PruneStage)]
    if earlier and stage.sparsity_m_by_n is None and earlier[-1].sparsity_m_by_n is None \
            and stage.target_sparsity < earlier[-1].target_sparsity:
        return r.diagnostic(("compression", index, "target_sparsity"),
                            f"target_sparsity {stage.target_sparsity} is below the earlier prune stage's "
                            f"{earlier[-1].target_sparsity}: the pruned weights would grow back",
                            f"raise it to at least {earlier[-1].target_sparsity}, or remove this stage")
    return None


def _m_by_n_sparsity(r: ResolvedSpec, index: int, stage: PruneStage) -> list[Diagnostic]:
    if stage.sparsity_m_by_n is None:
        return []
    m, n = stage.sparsity_m_by_n
    implied = round(1 - m / n, 6)
    if "target_sparsity" in stage.model_fields_set and abs(stage.target_sparsity - implied) > 1e-6:
        return [r.diagnostic(("compression", index, "target_sparsity"),
                             f"target_sparsity {stage.target_sparsity} conflicts with sparsity_m_by_n {[m, n]}, "
                             f"which gives {implied}",
                             "remove target_sparsity (m-by-n pruning sets the sparsity), or remove sparsity_m_by_n")]
    return []


TECHNIQUE = register(Technique("prune", "prune", params, rules=(
    NotAfter(("quantization_aware",), "prune after quantization_aware is not supported",
             "prune first, then quantization_aware with preserve: [sparsity]"),
    NotAfter(("cluster",), "prune after cluster destroys the clusters",
             "prune first, then cluster with preserve_sparsity: true"),
    Check(_sparsity_does_not_shrink),
    Checks(_m_by_n_sparsity),
)))
