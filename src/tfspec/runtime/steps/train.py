"""``train`` step: build the model from the spec, compile it, fit it (resumable), save ``model.keras``."""

from __future__ import annotations

import shutil
import time
from typing import Any

from tfspec.plan import (ApplicationModelParams, BuilderModelParams, SavedModelModelParams, StageParams,
                         TrainParams)
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import load_dataset
from tfspec.runtime.epochs import epoch_callbacks
from tfspec.runtime.distribute import peer_failures, strategy_for
from tfspec.runtime.errors import StepError
from tfspec.runtime.fit import compile_model, fit_model, model_metrics
from tfspec.runtime.keras_io import save_model
from tfspec.runtime.model_builder import (adapt_preprocessing, all_layers, build_model, device_for,
                                           unfreeze_backbone)
from tfspec.runtime.optimizers import at_learning_rate
from tfspec.runtime.placement import check_devices, pin_layer_calls, placed_devices
from tfspec.runtime.quality import quality
from tfspec.runtime.signatures import SIGNATURE_FILE, describe_signatures, load_signature

__all__ = ["run", "HISTORY_FILE", "check_model_against_plan"]

HISTORY_FILE = "history.json"
_CATEGORICAL_LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy")


def _layers(model: Any) -> list[Any]:
    """Every layer, nested backbones' layers included (tfmot stages reach those too)."""
    return all_layers(model)


def _layer_names(model: Any) -> list[str]:
    return [layer.name for layer in _layers(model)]


def check_model_against_plan(ctx: StepContext, model: Any, num_classes: int | None) -> None:
    """What the compiler cannot see in a builder's or a SavedModel's model, checked before any training:
    the output width against the data's classes, and every compression stage's ``skip_layers`` names
    (up to a distill stage, whose student the compiler checks). Exit 2 at the spec line."""
    p = ctx.params
    assert isinstance(p, TrainParams)
    if isinstance(p.model, BuilderModelParams):
        key: tuple[str, ...] = ("model", "builder")
    elif isinstance(p.model, SavedModelModelParams):
        key = ("model", "path")
    else:
        return  # layers written in the spec: validate checked both
    kind = p.model.kind
    loss = p.fit.loss.kind
    width = model.output_shape[-1] if not isinstance(model.output_shape, list) else None
    if loss in _CATEGORICAL_LOSSES and num_classes is not None and width is not None and width != num_classes:
        raise StepError(key, f"the model outputs {width} classes but the data has {num_classes}",
                        f"make the model's last layer {num_classes} units wide (or set data.num_classes)")
    names = _layer_names(model)
    for step in ctx.plan.steps:
        stage = step.params if isinstance(step.params, StageParams) else None
        if stage is None:
            continue
        if stage.makes_new_model():
            break  # the stages from here on name the new model's layers
        for j, name in enumerate(stage.named_layers()):
            if name not in names:
                raise StepError(("compression", stage.index, "skip_layers", j),
                                f"no layer named {name!r} in the {kind} model",
                                "its layers: " + ", ".join(names))


def _served_as_is(ctx: StepContext, params: TrainParams, model: SavedModelModelParams, data: Any) -> dict[str, Any]:
    """A SavedModel deployed unchanged: copied into the cache as it is, its signature read and measured."""
    source = ctx.root / model.path
    if not (source / "saved_model.pb").is_file():
        raise StepError(("model", "path"), f"{model.path} is not a SavedModel folder (no saved_model.pb)",
                        "serve_as_is deploys a SavedModel folder unchanged")
    target = ctx.out / "saved_model"
    shutil.copytree(source, target)
    signature = load_signature(target, model.signature, list(data.info["input_shape"]), params.output_name)
    metric = params.metric
    value = quality(signature.predict(data.features("test")), data.labels("test"), metric)
    ctx.write_json(SIGNATURE_FILE, {**signature.describe(), "signatures": describe_signatures(signature.loaded)})
    ctx.write_json(HISTORY_FILE, {})
    ctx.log(f"  served as it is: {model.signature}({signature.input_key}) -> {signature.output_key}, "
            f"test {metric} {value:.4f}")
    return {"test": {metric: value}, "metric": metric, "accuracy": value, "params": None, "layers": [],
            "epochs": 0, "epochs_run": 0, "resumed_from_epoch": 0, "stopped_early": False, "replicas": 1,
            "served_as_is": signature.describe()}


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    assert isinstance(p, TrainParams)
    fit = p.fit
    data = load_dataset(ctx.input_of_kind("data"), ctx.root)
    if isinstance(p.model, SavedModelModelParams) and p.model.serve_as_is:
        return _served_as_is(ctx, p, p.model, data)
    distributed = strategy_for(fit.distribution)
    replicas = distributed.replicas
    check_devices(p.model)
    with distributed.scope():
        model = pin_layer_calls(build_model(p.model, spec_dir=ctx.root, seed=fit.seed), device_for(p.model))
        callbacks = compile_model(model, fit, replicas=replicas) + epoch_callbacks(ctx.step.id)
    check_model_against_plan(ctx, model, data.num_classes)
    for name in adapt_preprocessing(model, data.features("train", 256)):
        ctx.log(f"  {name}: adapted on the training split")
    reading = data.input_description(distributed)
    if reading["sharding"] == "data" and data.files:
        ctx.log(f"  WARNING: {len(data.files)} data file(s) for {distributed.workers} workers: every worker reads "
                "all of them and keeps its share of the examples (auto-shard by data); write at least as many "
                "shards as workers so each reads only its own")
    trainable = p.trainable
    epochs_run = initial_epoch = 0
    stopped_early = False
    history: dict[str, list[float]] = {}
    phases: list[dict[str, Any]] = []
    fine_tune = p.model.fine_tune if isinstance(p.model, ApplicationModelParams) else None
    if trainable:
        checkpoint = ctx.checkpoint_dir if p.checkpoint_every_epoch else None
        started = time.perf_counter()
        with peer_failures(distributed):
            result = fit_model(model, data, fit=fit, epochs=p.epochs, quiet=ctx.quiet,
                               early_stopping=p.early_stopping,
                               checkpoint_dir=checkpoint / "head" if checkpoint and fine_tune else checkpoint,
                               callbacks=callbacks, distributed=distributed)
        history, epochs_run, initial_epoch, stopped_early = (result.history, result.epochs_run,
                                                             result.initial_epoch, result.stopped_early)
        phases.append({"phase": "head" if fine_tune else "train", "epochs": result.epochs_run,
                       "seconds": round(time.perf_counter() - started, 3)})
        if fine_tune:
            started = time.perf_counter()
            unfrozen = unfreeze_backbone(model, fine_tune.unfreeze)
            tuned = fit.model_copy(update={"optimizer": at_learning_rate(fit.optimizer, fine_tune.learning_rate)})
            with distributed.scope():
                callbacks = compile_model(model, tuned, replicas=replicas)
            with peer_failures(distributed):
                second = fit_model(model, data, fit=tuned, epochs=fine_tune.epochs, quiet=ctx.quiet,
                                   early_stopping=p.early_stopping,
                                   checkpoint_dir=checkpoint / "fine_tune" if checkpoint else None,
                                   callbacks=callbacks, distributed=distributed)
            history = {key: history.get(key, []) + values for key, values in second.history.items()}
            epochs_run += second.epochs_run
            phases.append({"phase": "fine_tune", "epochs": second.epochs_run, "unfrozen_layers": unfrozen,
                           "learning_rate": fine_tune.learning_rate,
                           "seconds": round(time.perf_counter() - started, 3)})
            ctx.log(f"  fine-tuned {unfrozen} backbone layers for {second.epochs_run} epochs")
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
        "distribution": {**distributed.describe(), "global_batch_size": distributed.global_batch_size(fit.batch_size)},
        "placement": placed_devices(model),
        "phases": phases,
        "input": reading,
    })
    ctx.log(f"  test {metrics['metric']} {metrics['accuracy']:.4f} after {metrics['epochs']} epochs" if metrics["accuracy"]
            is not None else f"  trained {metrics['epochs']} epochs")
    return metrics
