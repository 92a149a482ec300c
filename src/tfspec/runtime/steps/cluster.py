"""The ``cluster`` step: weight clustering (``cluster_weights``) with fine-tuning, then ``strip_clustering``.

Each selected layer's kernel is shared among ``number_of_clusters`` centroids (initialised k-means++,
linearly, by density or at random); with ``preserve_sparsity`` the zeros of an earlier prune stage stay
zero (sparsity-preserving clustering, tfmot's experimental ``cluster_weights``). ``cluster_weights``
changes the layers it is given, so it is applied to a clone of the input model, layer by layer through
``clone_model(clone_function=...)``.
"""

from __future__ import annotations

from typing import Any

from tfspec.runtime.compression import (
    compile_for_fine_tuning,
    load_stage_inputs,
    stage_metrics,
    stage_path,
    wrap_layers,
)
from tfspec.plan import ClusterParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.errors import StepError
from tfspec.runtime.keras_io import save_model
from tfspec.runtime.fit import fit_model
from tfspec.runtime.tf import import_tf

__all__ = ["CENTROID_INIT", "run"]

# spec value → tfmot.clustering.keras.CentroidInitialization member name
CENTROID_INIT = {
    "kmeans_plus_plus": "KMEANS_PLUS_PLUS",
    "linear": "LINEAR",
    "density_based": "DENSITY_BASED",
    "random": "RANDOM",
}


def _clusterable(layer: Any) -> bool:
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

    return bool(layer.trainable_weights) and ClusteringRegistry.supports(layer)


def run(ctx: StepContext) -> dict[str, Any]:
    import_tf()
    import tensorflow_model_optimization as tfmot

    p = ctx.params
    assert isinstance(p, ClusterParams)
    fit = p.fit
    inputs = load_stage_inputs(ctx)
    data = inputs.data
    skip = set(p.skip_layers)
    init = getattr(tfmot.clustering.keras.CentroidInitialization, CENTROID_INIT[p.centroid_init])
    clusters = p.number_of_clusters
    preserve_sparsity = p.preserve_sparsity
    wrapped: list[str] = []

    def wrap(layer: Any) -> Any:
        wrapped.append(layer.name)
        try:
            return tfmot.clustering.keras.cluster_weights(
                layer, number_of_clusters=clusters, cluster_centroids_init=init, preserve_sparsity=preserve_sparsity)
        except ValueError as error:
            raise StepError(stage_path(ctx, "skip_layers"), f"layer {layer.name!r} cannot be clustered: {error}",
                            f"add {layer.name} to skip_layers") from error

    clustered = wrap_layers(inputs.model, wrap, lambda layer: layer.name not in skip and _clusterable(layer))
    if not wrapped:
        raise StepError(stage_path(ctx, "skip_layers"), "no layer is left to cluster",
                        "leave at least one dense or convolution layer out of skip_layers")
    ctx.log(f"{ctx.step.id}: clustering {', '.join(wrapped)} into {clusters} clusters ({p.centroid_init}"
            f"{', sparsity preserved' if preserve_sparsity else ''})")
    history: dict[str, list[float]] = {}
    if p.fine_tune_epochs > 0:
        compile_for_fine_tuning(clustered, fit, p.learning_rate)
        history = fit_model(clustered, data, fit=fit, epochs=p.fine_tune_epochs, quiet=ctx.quiet,
                            checkpoint_dir=getattr(ctx, "checkpoint_dir", None)).history
    stripped = tfmot.clustering.keras.strip_clustering(clustered)
    save_model(stripped, ctx.out)
    ctx.write_json("history.json", history)
    return stage_metrics(ctx, inputs.model, stripped, data, {
        "number_of_clusters": clusters,
        "centroid_init": p.centroid_init,
        "preserve_sparsity": preserve_sparsity,
        "clustered_layers": wrapped,
    })
