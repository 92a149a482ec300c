"""cluster: weight clustering (``compress.<i>.cluster``)."""

from __future__ import annotations

from typing import Any

from tfspec.plan import ClusterParams
from tfspec.spec.compression import ClusterStage

from ..resolve import ResolvedSpec
from ..inputs import InputDigests
from .registry import Needs, NotAfter, Once, Technique, register

__all__ = ["TECHNIQUE"]


def params(resolved: ResolvedSpec, index: int, stage: ClusterStage, common: dict[str, Any],
           digests: InputDigests | None) -> ClusterParams:
    return ClusterParams(**common, number_of_clusters=stage.number_of_clusters, centroid_init=stage.centroid_init,
                         preserve_sparsity=stage.preserve_sparsity, skip_layers=list(stage.skip_layers),
                         fine_tune_epochs=stage.fine_tune_epochs)


TECHNIQUE = register(Technique("cluster", "cluster", params, rules=(
    NotAfter(("quantization_aware",), "cluster after quantization_aware is not supported",
             "cluster first, then quantization_aware with preserve: [clusters]"),
    Once("cluster appears twice: the second stage re-clusters the first's centroids",
         "keep one cluster stage (compression[{first}]) with the number_of_clusters you want"),
    Needs(lambda stage: stage.preserve_sparsity, "prune", "preserve_sparsity",
          "preserve_sparsity needs an earlier prune stage",
          "add a prune stage before this one, or set preserve_sparsity: false"),
    NotAfter(("prune",), "cluster after prune must preserve sparsity",
             "set preserve_sparsity: true (plain clustering undoes the pruning)", key="preserve_sparsity",
             unless=lambda stage: stage.preserve_sparsity),
)))
