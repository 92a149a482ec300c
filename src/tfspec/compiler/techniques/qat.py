"""quantization_aware: quantization-aware training (``compress.<i>.quantization_aware``, step kind ``qat``)."""

from __future__ import annotations

from typing import Any

from tfspec.plan import QatParams
from tfspec.spec.compression import QuantizationAwareStage

from ..resolve import ResolvedSpec
from ..inputs import InputDigests
from .registry import MODEL_OUTPUTS, Needs, NotAfter, Once, Technique, register

__all__ = ["TECHNIQUE"]


def params(resolved: ResolvedSpec, index: int, stage: QuantizationAwareStage, common: dict[str, Any],
           digests: InputDigests | None) -> QatParams:
    return QatParams(**common, preserve=list(stage.preserve), fine_tune_epochs=stage.fine_tune_epochs)


TECHNIQUE = register(Technique("quantization_aware", "qat", params, rules=(
    Once("quantization_aware appears twice", "keep one quantization_aware stage (compression[{first}])"),
    NotAfter(("prune",), "quantization_aware after prune must preserve sparsity",
             "add sparsity to preserve (PQAT), or the pruned zeros are lost", key="preserve",
             unless=lambda stage: "sparsity" in stage.preserve),
    NotAfter(("cluster",), "quantization_aware after cluster must preserve clusters",
             "add clusters to preserve (CQAT)", key="preserve", unless=lambda stage: "clusters" in stage.preserve),
    Needs(lambda stage: "sparsity" in stage.preserve, "prune", "preserve",
          "preserve: [sparsity] needs an earlier prune stage",
          "add a prune stage before quantization_aware, or remove sparsity"),
    Needs(lambda stage: "clusters" in stage.preserve, "cluster", "preserve",
          "preserve: [clusters] needs an earlier cluster stage",
          "add a cluster stage before quantization_aware, or remove clusters"),
# the model keeps its quantize wrappers, saved as HDF5 (tfmot's wrappers do not round-trip through .keras)
), outputs=("model.h5", *MODEL_OUTPUTS[1:]), quantization_aware=True))
