"""quantization_aware: quantization-aware training (``compress.<i>.quantization_aware``, step kind ``qat``)."""

from __future__ import annotations

from typing import Any

from tfspec.base.errors import Diagnostic
from tfspec.plan import QatParams
from tfspec.spec.compression import QuantizationAwareStage

from ..resolve import ResolvedSpec
from ..inputs import InputDigests
from .registry import MODEL_OUTPUTS, Checks, Needs, NotAfter, Once, Technique, register, stage_model_layers

__all__ = ["TECHNIQUE"]


def params(resolved: ResolvedSpec, index: int, stage: QuantizationAwareStage, common: dict[str, Any],
           digests: InputDigests | None) -> QatParams:
    return QatParams(**common, preserve=list(stage.preserve), fine_tune_epochs=stage.fine_tune_epochs)


# Layer types tfmot's default 8-bit scheme cannot quantize (Default8BitQuantizeRegistry.supports is false and
# no layout transform rewrites them; checked with tfmot 0.8.1).
_UNSUPPORTED_LAYERS = frozenset({"conv1d", "max_pool1d", "layer_norm", "embedding", "lstm", "gru"})


def _layers_supported(r: ResolvedSpec, index: int, stage: QuantizationAwareStage) -> list[Diagnostic]:
    layers, where = stage_model_layers(r, index)
    return [r.diagnostic(where + (j, "type"),
                         f"quantization-aware training does not support {layer.type} layers "
                         f"(compression[{index}] is quantization_aware)",
                         "remove the quantization_aware stage and use post-training quantization in the tflite target")
            for j, layer in enumerate(layers) if layer.type in _UNSUPPORTED_LAYERS]


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
    Checks(_layers_supported),
# the model keeps its quantize wrappers, saved as HDF5 (tfmot's wrappers do not round-trip through .keras)
), outputs=("model.h5", *MODEL_OUTPUTS[1:]), quantization_aware=True))
