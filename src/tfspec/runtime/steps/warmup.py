"""``warmup`` step: ``tf_serving_warmup_requests``, a TFRecord of ``PredictionLog`` records whose
``PredictRequest``s carry real test examples under the serving signature's input key."""

from __future__ import annotations

from typing import Any

from tfspec.plan import WarmupParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import example_count, load_dataset
from tfspec.runtime.tf import import_tf

__all__ = ["run", "WARMUP_FILE"]

WARMUP_FILE = "tf_serving_warmup_requests"


def run(ctx: StepContext) -> dict[str, Any]:
    tf, _ = import_tf()
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    p = ctx.params
    assert isinstance(p, WarmupParams)
    data = load_dataset(ctx.input_of_kind("data"), ctx.root)
    signature = tf.saved_model.load(str(ctx.input_of_kind("export") / "saved_model")).signatures[p.signature]
    _, inputs = signature.structured_input_signature
    # a SavedModel served as it is: the plan names no key, the signature's one input is it
    key = p.input_name if p.input_name is not None else next(iter(inputs), None)
    samples = data.take("test", p.requests, raw=p.raw_inputs)  # in_model: the signature takes raw examples
    # several named inputs: one feature per signature key
    named = samples if isinstance(samples, dict) else {key: samples}
    for name in named:
        if name not in inputs:
            raise RuntimeError(f"the SavedModel's {p.signature} has no input {name!r} ({sorted(inputs)})")
    count = example_count(samples)
    path = ctx.out / WARMUP_FILE
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(count):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=p.model_name, signature_name=p.signature))
            for name, values in named.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(values[i:i + 1], dtype=inputs[name].dtype))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    ctx.log(f"  {count} warmup requests for {p.model_name}/{p.signature}")
    return {"requests": count, "size_bytes": path.stat().st_size}
