"""The ``prune`` step: magnitude pruning (``prune_low_magnitude``) with fine-tuning, then ``strip_pruning``.

The schedule's steps are derived from the steps the stage really runs (``fine_tune_epochs`` × steps per
epoch), never left at tfmot's ``frequency=100`` (a short run would end with sparsity 0.0):

* ``UpdatePruningStep`` numbers the batches 0 … N−1, so step N−1 is the last one a mask update can see;
* ``polynomial_decay`` without ``end_step`` reaches the target at the last step of the next-to-last
  epoch, so the last epoch fine-tunes at full sparsity (one-epoch stages: at the last step);
* without ``frequency``, masks are updated about ten times over the schedule (at most every 100 steps),
  and the end step is put on an update step so the final mask has exactly the target sparsity.

Layers named in ``skip_layers`` (and layers without weights) stay unwrapped; they are selected through
``clone_model(clone_function=...)`` on a clone of the input model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfspec.runtime.compression import (
    compile_for_fine_tuning,
    load_stage_inputs,
    stage_metrics,
    stage_path,
    steps_per_epoch,
    wrap_layers,
)
from tfspec.plan import PruneParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.errors import StepError
from tfspec.runtime.keras_io import save_model
from tfspec.runtime.fit import fit_model
from tfspec.runtime.tf import import_tf

__all__ = ["PruningPlan", "derive_schedule", "run"]

_MAX_FREQUENCY = 100
_UPDATES = 10


@dataclasses.dataclass(frozen=True)
class PruningPlan:
    """The schedule a prune stage runs with.

    Attributes:
        schedule: ``constant`` or ``polynomial_decay``.
        target_sparsity: the sparsity the masks end at (``1 - m/n`` for m-by-n pruning).
        initial_sparsity: ``polynomial_decay``'s sparsity at ``begin_step``.
        begin_step / end_step: the schedule's range in optimizer steps (``end_step`` -1: no end).
        frequency: steps between mask updates.
        total_steps: optimizer steps of the whole fine-tuning.
        steps_per_epoch: optimizer steps in one epoch.
    """

    schedule: str
    target_sparsity: float
    initial_sparsity: float
    begin_step: int
    end_step: int
    frequency: int
    total_steps: int
    steps_per_epoch: int


def _largest_divisor_at_most(span: int, limit: int) -> int:
    for candidate in range(max(1, min(limit, span)), 0, -1):
        if span % candidate == 0:
            return candidate
    return 1


def derive_schedule(stage: PruneParams, examples: int) -> PruningPlan:
    """Fill the schedule's steps from the steps the stage runs; raise :class:`StepError` when they cannot fit.

    The compiler resolved everything else; only the examples per epoch are known here, from the data."""
    path = ("compression", stage.index)
    per_epoch = steps_per_epoch(examples, stage.fit.batch_size)
    epochs = stage.fine_tune_epochs
    total = epochs * per_epoch
    last = total - 1
    begin = stage.begin_step
    target = stage.target_sparsity
    if begin > last:
        raise StepError(path + ("begin_step",), f"begin_step {begin} is after the last step this stage runs "
                        f"({last}: {epochs} epoch(s) × {per_epoch} steps per epoch, counted from 0)",
                        "lower begin_step or raise fine_tune_epochs")
    end = stage.end_step
    frequency = stage.frequency
    if end is not None and end > last:
        raise StepError(path + ("end_step",), f"end_step {end} is after the last step this stage runs "
                        f"({last}: {epochs} epoch(s) × {per_epoch} steps per epoch, counted from 0); the target "
                        "sparsity would never be reached", f"lower end_step to at most {last}, or raise fine_tune_epochs")
    if stage.schedule == "constant":
        span = (end if end is not None else last) - begin
        if frequency is None:
            frequency = max(1, min(_MAX_FREQUENCY, span // _UPDATES))
        return PruningPlan("constant", target, target, begin, end if end is not None else -1, frequency, total, per_epoch)
    derived_end = end is None
    if derived_end:
        end = epochs * per_epoch - per_epoch - 1 if epochs >= 2 else last
    if end <= begin:
        raise StepError(path + ("begin_step",), f"begin_step {begin} leaves no steps for the schedule "
                        f"(it would end at step {end})", "lower begin_step or raise fine_tune_epochs")
    span = end - begin
    desired = max(1, min(_MAX_FREQUENCY, span // _UPDATES))
    if frequency is None:
        if derived_end:
            frequency = desired
            end = begin + frequency * (span // frequency)  # the last update lands on end_step
        else:
            frequency = _largest_divisor_at_most(span, desired)
    return PruningPlan("polynomial_decay", target, stage.initial_sparsity, begin, end, frequency, total,
                       per_epoch)


def _schedule(tfmot: Any, plan: PruningPlan) -> Any:
    schedules = tfmot.sparsity.keras
    if plan.schedule == "constant":
        return schedules.ConstantSparsity(plan.target_sparsity, begin_step=plan.begin_step, end_step=plan.end_step,
                                          frequency=plan.frequency)
    return schedules.PolynomialDecay(initial_sparsity=plan.initial_sparsity, final_sparsity=plan.target_sparsity,
                                     begin_step=plan.begin_step, end_step=plan.end_step, frequency=plan.frequency)


def _prunable(tfmot: Any, layer: Any) -> bool:
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    if not layer.weights:
        return False
    if isinstance(layer, tfmot.sparsity.keras.PrunableLayer):
        return bool(layer.get_prunable_weights())
    # the registry also "supports" layers it prunes nothing of (BatchNormalization): not reported as pruned
    return PruneRegistry.supports(layer) and bool(PruneRegistry._weight_names(layer))


def run(ctx: StepContext) -> dict[str, Any]:
    import_tf()
    import tensorflow_model_optimization as tfmot

    p = ctx.params
    assert isinstance(p, PruneParams)
    fit = p.fit
    inputs = load_stage_inputs(ctx)
    data = inputs.data
    plan = derive_schedule(p, data.count("train"))
    if plan.frequency and plan.schedule == "polynomial_decay" and (plan.end_step - plan.begin_step) % plan.frequency:
        ctx.log(f"{ctx.step.id}: end_step - begin_step is not a multiple of frequency {plan.frequency}: the last mask "
                "update comes before end_step, below the target sparsity")
    skip = set(p.skip_layers)
    m_by_n = tuple(p.sparsity_m_by_n) if p.sparsity_m_by_n else None
    schedule = _schedule(tfmot, plan)
    wrapped: list[str] = []

    def wrap(layer: Any) -> Any:
        wrapped.append(layer.name)
        try:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule, sparsity_m_by_n=m_by_n)
        except ValueError as error:
            raise StepError(stage_path(ctx, "skip_layers"), f"layer {layer.name!r} cannot be pruned: {error}",
                            f"add {layer.name} to skip_layers") from error

    pruned = wrap_layers(inputs.model, wrap, lambda layer: layer.name not in skip and _prunable(tfmot, layer))
    if not wrapped:
        raise StepError(stage_path(ctx, "skip_layers"), "no layer is left to prune",
                        "leave at least one dense or convolution layer out of skip_layers")
    compile_for_fine_tuning(pruned, fit, p.learning_rate)
    ctx.log(f"{ctx.step.id}: pruning {', '.join(wrapped)} to sparsity {plan.target_sparsity:g} "
            f"({plan.schedule}, steps {plan.begin_step}..{plan.end_step} every {plan.frequency}, "
            f"{plan.total_steps} steps)")
    result = fit_model(pruned, data, fit=fit, epochs=p.fine_tune_epochs, quiet=ctx.quiet,
                       checkpoint_dir=getattr(ctx, "checkpoint_dir", None),
                       callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    save_model(stripped, ctx.out)
    ctx.write_json("history.json", result.history)
    metrics = stage_metrics(ctx, inputs.model, stripped, data, {
        "target_sparsity": plan.target_sparsity,
        "pruned_layers": wrapped,
        "schedule": dataclasses.asdict(plan),
        "sparsity_m_by_n": list(m_by_n) if m_by_n else None,
    })
    return metrics
