"""``train`` step: build the model from the spec, compile it, fit it (resumable), save ``model.keras``."""

from __future__ import annotations

from typing import Any

from tfspec.plan import TrainParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import load_dataset
from tfspec.runtime.distribute import peer_failures, strategy_for
from tfspec.runtime.fit import compile_model, fit_model, model_metrics
from tfspec.runtime.keras_io import save_model
from tfspec.runtime.model_builder import build_model, device_for
from tfspec.runtime.placement import check_devices, pin_layer_calls, placed_devices

__all__ = ["run", "HISTORY_FILE"]

HISTORY_FILE = "history.json"


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    assert isinstance(p, TrainParams)
    fit = p.fit
    data = load_dataset(ctx.input_of_kind("data"))
    distributed = strategy_for(fit)
    replicas = distributed.replicas
    check_devices(p.model)
    with distributed.scope():
        model = pin_layer_calls(build_model(p.model, spec_dir=ctx.root, seed=fit["seed"]),
                                device_for(p.model))
        callbacks = compile_model(model, fit, replicas=replicas)
    trainable = p.trainable
    epochs_run = initial_epoch = 0
    stopped_early = False
    history: dict[str, list[float]] = {}
    if trainable:
        checkpoint = ctx.checkpoint_dir if p.checkpoint_every_epoch else None
        with peer_failures(distributed):
            result = fit_model(model, data, fit=fit, epochs=p.epochs, quiet=ctx.quiet,
                               early_stopping=p.early_stopping, checkpoint_dir=checkpoint,
                               callbacks=callbacks, augmentation=data.info.get("augmentation"),
                               distributed=distributed)
        history, epochs_run, initial_epoch, stopped_early = (result.history, result.epochs_run,
                                                             result.initial_epoch, result.stopped_early)
        if initial_epoch:
            ctx.log(f"  resumed from the checkpoint after epoch {initial_epoch}")
    save_model(model, ctx.out)
    ctx.write_json(HISTORY_FILE, history)
    metrics = model_metrics(model, data, fit)
    metrics.update({
        "epochs": len(history.get("loss", [])),
        "epochs_run": epochs_run,
        "resumed_from_epoch": initial_epoch,
        "stopped_early": stopped_early,
        "replicas": replicas,
        "distribution": {**distributed.describe(), "global_batch_size": distributed.global_batch_size(fit["batch_size"])},
        "placement": placed_devices(model),
    })
    ctx.log(f"  test accuracy {metrics['accuracy']:.4f} after {metrics['epochs']} epochs" if metrics["accuracy"]
            is not None else f"  trained {metrics['epochs']} epochs")
    return metrics
