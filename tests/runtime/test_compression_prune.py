"""The prune step: schedule derivation (unit) and pruning on digits through the executor (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _compression_helpers import kernels, run_spec, shared_cache
from runtime_testing import plan_fit

from tfspec.plan import PruneParams
from tfspec.runtime.errors import StepError
from tfspec.runtime.steps.prune import derive_schedule

STAGE = {"schedule": "polynomial_decay", "target_sparsity": 0.8, "initial_sparsity": 0.0, "begin_step": 0,
         "end_step": None, "frequency": None, "fine_tune_epochs": 3, "sparsity_m_by_n": None}


def _stage(index: int = 0, **changes: object) -> PruneParams:
    """The prune params the compiler writes (batch size 32), with ``changes``."""
    return PruneParams(**{**STAGE, **changes}, index=index, stage="prune", learning_rate=1e-3, skip_layers=[],
                       fit=plan_fit({"batch_size": 32}), input_name="inputs", output_name="outputs", input_shape=[64],
                       input_dtype="float32", num_classes=10)


def test_schedule_ends_on_an_update_step_before_the_last_epoch() -> None:
    plan = derive_schedule(_stage(), examples=1257)
    assert plan.steps_per_epoch == 40 and plan.total_steps == 120
    assert plan.end_step <= 2 * 40 - 1  # the last epoch fine-tunes at the target sparsity
    assert (plan.end_step - plan.begin_step) % plan.frequency == 0  # the last update lands on end_step
    assert 1 <= plan.frequency < 100  # never tfmot's default of 100, which a 120-step run would barely reach


def test_schedule_of_a_one_epoch_stage_ends_within_the_run() -> None:
    plan = derive_schedule(_stage(fine_tune_epochs=1), examples=100)
    assert plan.total_steps == 4
    assert plan.end_step <= 3 and plan.frequency == 1


def test_explicit_end_step_keeps_and_frequency_divides_it() -> None:
    plan = derive_schedule(_stage(begin_step=10, end_step=70), examples=1257)
    assert plan.end_step == 70 and (70 - 10) % plan.frequency == 0


def test_end_step_past_the_run_is_an_error() -> None:
    with pytest.raises(StepError) as error:
        derive_schedule(_stage(2, end_step=500), examples=1257)
    assert str(error.value) == ("compression[2].end_step: end_step 500 is after the last step this stage runs (119: "
                                "3 epoch(s) × 40 steps per epoch, counted from 0); the target sparsity would never be "
                                "reached (hint: lower end_step to at most 119, or raise fine_tune_epochs)")


def test_begin_step_past_the_run_is_an_error() -> None:
    with pytest.raises(StepError, match=r"^compression\[0\]\.begin_step: begin_step 200 is after the last step"):
        derive_schedule(_stage(begin_step=200), examples=1257)


@pytest.mark.slow
def test_prune_reaches_the_target_and_skips_the_output_layer(tmp_path: Path, tmp_path_factory) -> None:
    run = run_spec(tmp_path, shared_cache(tmp_path_factory), """\
  - {kind: prune, target_sparsity: 0.8, fine_tune_epochs: 3, skip_layers: [logits]}""")
    model = run.model("compress.0.prune")
    assert not any("prune" in type(layer).__name__.lower() for layer in model.layers)  # strip_pruning ran
    values = kernels(model)
    hidden_sparsity = float((values["hidden"] == 0).mean())
    assert abs(hidden_sparsity - 0.8) <= 0.02
    assert np.count_nonzero(values["logits"]) == values["logits"].size
    metrics = run.metrics("compress.0.prune")
    by_layer = {layer["layer"]: layer for layer in metrics["layers"]}
    assert by_layer["hidden"]["nonzero"] == np.count_nonzero(values["hidden"])
    assert by_layer["hidden"]["sparsity"] == pytest.approx(hidden_sparsity, abs=1e-6)
    assert metrics["accuracy_before"] > 0.95 and metrics["accuracy_after"] > 0.9
    assert metrics["size"]["after"]["h5_zipped_bytes"] < metrics["size"]["before"]["h5_zipped_bytes"]
    assert metrics["params"] == model.count_params()
    assert metrics["pruned_layers"] == ["hidden"]


@pytest.mark.slow
def test_prune_two_by_four(tmp_path: Path, tmp_path_factory) -> None:
    run = run_spec(tmp_path, shared_cache(tmp_path_factory), """\
  - {kind: prune, sparsity_m_by_n: [2, 4], schedule: constant, fine_tune_epochs: 2, skip_layers: [logits]}""")
    hidden = kernels(run.model("compress.0.prune"))["hidden"]
    # At most 2 non-zero weights in every block of 4 consecutive inputs of each unit.
    blocks = hidden.T.reshape(-1, 4)
    assert (np.count_nonzero(blocks, axis=1) <= 2).all()
    assert float((hidden == 0).mean()) == pytest.approx(0.5, abs=0.02)
    assert run.metrics("compress.0.prune")["target_sparsity"] == 0.5


@pytest.mark.slow
def test_end_step_past_the_run_points_at_the_spec_line(tmp_path: Path, tmp_path_factory) -> None:
    with pytest.raises(StepError) as error:
        run_spec(tmp_path, shared_cache(tmp_path_factory), """\
  - {kind: prune, end_step: 5000, fine_tune_epochs: 1}""")
    lines = (tmp_path / "deploy.yaml").read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "end_step: 5000" in text)
    column = lines[line - 1].index("end_step") + 1
    assert str(error.value).startswith(f"{tmp_path}/deploy.yaml:{line}:{column}: compression[0].end_step: end_step "
                                       "5000 is after the last step this stage runs (39: 1 epoch(s) × 40 steps")


def test_layers_with_nothing_to_prune_are_not_reported_as_pruned() -> None:
    """tfmot's registry "supports" BatchNormalization with no prunable weight: wrapping it would list it
    among the pruned layers of a backbone."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    from tfspec.runtime.steps.prune import _prunable

    dense, norm, conv = keras.layers.Dense(4), keras.layers.BatchNormalization(), keras.layers.Conv2D(2, 3)
    dense.build((None, 3))
    norm.build((None, 3))
    conv.build((None, 8, 8, 1))
    assert _prunable(tfmot, dense) and _prunable(tfmot, conv)
    assert not _prunable(tfmot, norm)
