"""The cluster step on digits through the executor: unique kernel values, sparsity preservation (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _compression_helpers import kernels, run_spec, shared_cache


@pytest.mark.slow
@pytest.mark.parametrize("init", ["kmeans_plus_plus", "linear", "density_based"])
def test_cluster_limits_unique_weights(tmp_path: Path, tmp_path_factory, init: str) -> None:
    run = run_spec(tmp_path, shared_cache(tmp_path_factory), f"""\
  - {{kind: cluster, number_of_clusters: 16, centroid_init: {init}, fine_tune_epochs: 1}}""")
    model = run.model("compress.0.cluster")
    assert not any("cluster" in type(layer).__name__.lower() for layer in model.layers)  # strip_clustering ran
    values = kernels(model)
    assert set(values) == {"hidden", "logits"}
    for kernel in values.values():
        assert len(np.unique(kernel)) <= 16
    metrics = run.metrics("compress.0.cluster")
    assert {layer["layer"]: layer["unique"] for layer in metrics["layers"]} == {
        name: len(np.unique(kernel)) for name, kernel in values.items()}
    assert metrics["accuracy_after"] > 0.9
    # Shared values compress: the zipped weights file shrinks.
    assert metrics["size"]["after"]["h5_zipped_bytes"] * 2 < metrics["size"]["before"]["h5_zipped_bytes"]


@pytest.mark.slow
def test_cluster_skips_layers_and_preserves_sparsity(tmp_path: Path, tmp_path_factory) -> None:
    run = run_spec(tmp_path, shared_cache(tmp_path_factory), """\
  - {kind: prune, target_sparsity: 0.6, fine_tune_epochs: 2, skip_layers: [logits]}
  - {kind: cluster, number_of_clusters: 8, preserve_sparsity: true, skip_layers: [logits], fine_tune_epochs: 1}""")
    pruned = kernels(run.model("compress.0.prune"))["hidden"]
    clustered = kernels(run.model("compress.1.cluster"))
    # Every pruned zero is still zero, and the layer holds at most 8 values (zero among them).
    assert (clustered["hidden"][pruned == 0] == 0).all()
    assert float((clustered["hidden"] == 0).mean()) == pytest.approx(0.6, abs=0.02)
    assert len(np.unique(clustered["hidden"])) <= 8
    assert len(np.unique(clustered["logits"])) > 100  # skipped: left as it was
    assert run.metrics("compress.1.cluster")["clustered_layers"] == ["hidden"]
