"""``tflite`` step: a Keras model's TFLite conversion (what ``TFLiteConverter.from_keras_model`` does) for
one quantization mode.

Modes (from the plan): ``none`` (float32), ``dynamic`` (int8 weights), ``float16`` (float16 weights),
``int8`` (full integer, calibrated on training examples, int8/uint8/float32 I/O) and ``int16x8``
(int16 activations, int8 weights, through the experimental op set). A quantization-aware model
converts with ``Optimize.DEFAULT`` and keeps the ranges it learned. Post-training quantization stays
behind this one module so it can move to the LiteRT quantizer.

Dense kernels are quantized per tensor unless the plan asks for ``per_channel_dense``: per channel,
TFLite stores a float32 scale and an int64 zero point for every output unit of the kernel and of its
bias, which for a 64-input layer is as much again as a third of the int8 weights (15.2 KB instead of
12.0 KB for the digits MLP, same test accuracy). Convolutions stay per channel.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.plan import MODEL_STEP_KINDS, TfliteParams
from tfspec.runtime.accelerators import interpreter_kernels
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import example_at, example_count, load_dataset, representative_samples
from tfspec.runtime.keras_io import builder_code, load_model
from tfspec.runtime.model_builder import recurrent_layers
from tfspec.runtime.tf import import_tf

__all__ = ["run", "convert", "configure"]



def _ops(tf: Any) -> dict[str, Any]:
    ops = tf.lite.OpsSet
    return {
        "tflite_builtins": ops.TFLITE_BUILTINS,
        "tflite_builtins_int8": ops.TFLITE_BUILTINS_INT8,
        "select_tf_ops": ops.SELECT_TF_OPS,
        "experimental_tflite_builtins_activations_int16_weights_int8":
            ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
    }


def convert(model: Any, params: TfliteParams, calibration: Any, preprocess: Any = None) -> bytes:
    """The ``.tflite`` flatbuffer for ``model`` (a Keras model, or the folder of a SavedModel served as it
    is, converted through its ``signature``) under the plan's conversion ``params``. With ``preprocess``
    (``data.preprocessing.in_model``) the model takes raw float32 examples of ``params.raw_input_shape``
    and applies it first (``calibration`` is then raw examples too)."""
    tf, _ = import_tf()
    with tempfile.TemporaryDirectory(prefix="tfspec-tflite-") as scratch:  # a Keras model's SavedModel
        converter = _converter(tf, model, params, preprocess, Path(scratch) / "saved_model")
        configure(converter, tf, params, calibration)
        with warnings.catch_warnings():
            # Emitted for every int8 conversion: it concerns the legacy `quantized_input_stats`, unused here.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            return converter.convert()


def _converter(tf: Any, model: Any, params: TfliteParams, preprocess: Any, scratch: Path) -> Any:
    """The TFLite converter for ``model`` (see :func:`convert`); ``scratch``: a folder it may write."""
    if isinstance(model, Path):
        return tf.lite.TFLiteConverter.from_saved_model(str(model), signature_keys=[params.signature])
    if preprocess is not None:
        # a recurrent model needs the static batch of one (below) here too
        batch = 1 if recurrent_layers(model) else None
        spec = tf.TensorSpec([batch, *(params.raw_input_shape or [])], tf.float32, name=model.input_names[0])
        function = tf.function(lambda x: model(preprocess(x), training=False)).get_concrete_function(spec)
        return tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    if recurrent_layers(model) and len(model.inputs) == 1:
        # LSTM/GRU at a dynamic batch convert to TensorList loops the builtins lack; at a static batch of
        # one, LSTM becomes the builtin UNIDIRECTIONAL_SEQUENCE_LSTM and GRU a builtin WHILE loop. Their
        # state lives in variable tensors: reset them between examples (verify and the Kotlin loader do).
        spec = tf.TensorSpec([1, *model.input_shape[1:]], model.inputs[0].dtype)
        function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        return tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    return _from_keras_model(tf, model, scratch)


def _from_keras_model(tf: Any, model: Any, folder: Path) -> Any:
    """``TFLiteConverter.from_keras_model(model)`` for a tf_keras model, without its ``import keras``.

    TF 2.21's Keras converter (``TFLiteKerasModelConverterV2._convert_keras_to_saved_model`` in
    tensorflow/lite/python/lite.py, 2.21.0) first asks whether the model is a Keras 3 one by importing
    Keras 3 (about 1 s of CPU; the runtime builds only tf_keras models), then saves the model as a
    SavedModel with debug info and converts that folder. This does the same two steps itself and records
    the same origin (a Keras model) in the flatbuffer's conversion metadata, so the bytes are identical
    (tests/runtime/test_runtime_tflite_modes.py compares them for every quantization mode)."""
    from tensorflow.lite.python import conversion_metadata_schema_py_generated as conversion_metadata

    try:
        tf.saved_model.save(model, str(folder), options=tf.saved_model.SaveOptions(save_debug_info=True))
    except Exception:  # noqa: BLE001 - the converter's own fallback (freezing the model) handles these
        return tf.lite.TFLiteConverter.from_keras_model(model)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder))
    # The metadata field is set from a private class attribute when a converter is made; ours is a Keras model.
    converter._metadata.environment.modelType = conversion_metadata.ModelType.KERAS_MODEL
    return converter


def configure(converter: Any, tf: Any, params: TfliteParams, calibration: Any) -> None:
    """Set the plan's optimizations, calibration examples, op set, types and I/O types on ``converter``."""
    if params.optimizations:
        converter.optimizations = [getattr(tf.lite.Optimize, name) for name in params.optimizations]
        # The converter's switch for this (TF 2.21) is still underscored; it affects only Dense layers.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = not params.per_channel_dense
    if calibration is not None and example_count(calibration):
        def representative() -> Iterator[Any]:
            # several named inputs: a dict keyed by the signature's input names
            for i in range(example_count(calibration)):
                sample = example_at(calibration, i)
                yield sample if isinstance(sample, dict) else [sample]

        converter.representative_dataset = representative
    ops = _ops(tf)
    if params.supported_ops:
        converter.target_spec.supported_ops = [ops[name] for name in params.supported_ops]
    if params.supported_types:
        converter.target_spec.supported_types = [tf.as_dtype(t) for t in params.supported_types]
    for attribute, kind in (("inference_input_type", params.inference_input_type),
                            ("inference_output_type", params.inference_output_type)):
        if kind != "float32":
            setattr(converter, attribute, tf.as_dtype(kind))

def run(ctx: StepContext) -> dict[str, Any]:
    from ai_edge_litert.interpreter import Interpreter

    p = ctx.params
    assert isinstance(p, TfliteParams)
    folder = ctx.input_of_kind(*MODEL_STEP_KINDS)
    model = (folder / "saved_model" if p.signature
             else load_model(folder, compile=False, code=builder_code(ctx.plan, ctx.root)))
    data = load_dataset(ctx.input_of_kind("data"), ctx.root)
    calibration = None
    if p.representative_samples:
        samples = representative_samples(data, p.representative_samples, seed=0, raw=p.raw_input_shape is not None)
        # several named inputs: each already in its own dtype (the data step's split);
        # integer inputs (token ids) calibrate as they are: the converter keeps them integer
        calibration = samples if isinstance(samples, dict) or samples.dtype.kind in "iu" else samples.astype(np.float32)
    flatbuffer = convert(model, p, calibration, data.preprocessing() if p.raw_input_shape is not None else None)
    path = ctx.out / p.filename
    path.write_bytes(flatbuffer)
    interpreter = Interpreter(model_path=str(path), **interpreter_kernels(p.xnnpack))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    ctx.log(f"  {p.filename}: {len(flatbuffer)} bytes, {p.quantization}, "
            f"input {np.dtype(inp['dtype']).name}, output {np.dtype(out['dtype']).name}")
    return {
        "size_bytes": len(flatbuffer),
        "quantization": p.quantization,
        "calibration_samples": 0 if calibration is None else example_count(calibration),
        "input_dtype": np.dtype(inp["dtype"]).name,
        "output_dtype": np.dtype(out["dtype"]).name,
        "input_quantization": [float(inp["quantization"][0]), int(inp["quantization"][1])],
        "output_quantization": [float(out["quantization"][0]), int(out["quantization"][1])],
    }
