"""mirrored and model-parallel placement on a CPU split into 2 logical devices, through the real train step."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _distributed_support import clean_env, run_with_logical_cpus

from tfspec_testing import tfspec_command

pytestmark = pytest.mark.slow

BASE = """\
api_version: tfspec/v1
name: digits
version: 1
data:
  source: {kind: sklearn_digits}
  split: {validation: 0.1, test: 0.2, seed: 7}
  preprocessing: {rescale: 0.0625}
model:
  kind: sequential
  input_shape: [64]
  layers:
    - {type: dense, name: hidden, units: 64, activation: relu}
    - {type: dense, name: logits, units: 10, activation: softmax}
%(placement)s
training:
  optimizer: {kind: adam, learning_rate: 2.0e-3}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 10
  batch_size: 32
  distribution: %(distribution)s
targets:
  - {kind: gpu_cluster, name: cluster, workers: 1, gpus_per_worker: 0, storage: {storage_class: nfs-client}}
"""

# Runs the spec's plan (data, train, export) with the executor and prints the train step's metrics, the
# optimizer's learning rate as saved, and for placement the devices of the traced training ops.
RUN_PLAN = """
import json, sys
from pathlib import Path
import numpy as np
from tfspec.compiler.pipeline import compile_spec
from tfspec.runtime.executor import run_plan
from tfspec.running import run_inputs_from_compiled
from tfspec.runtime.keras_io import load_model
from tfspec.runtime.model_builder import build_model, device_for
from tfspec.runtime.placement import pin_layer_calls
spec, work = Path(sys.argv[1]), Path(sys.argv[2])
result = compile_spec(spec)
assert result.ok, [d.format() for d in result.diagnostics]
outcome = run_plan(run_inputs_from_compiled(result), cache_dir=work / "cache", dist_dir=work / "dist", quiet=True, log=lambda line: None)
train = result.plan.step("train")
metrics = json.loads((outcome.cache_dir / train.fingerprint / "metrics.json").read_text())
saved = load_model(outcome.cache_dir / train.fingerprint)
out = {"metrics": metrics, "learning_rate": float(saved.optimizer.learning_rate.numpy())}
model_params = train.params.model
if getattr(model_params, "placement", None):  # sequential and functional models can place layer groups
    model = pin_layer_calls(build_model(model_params, spec_dir=spec.parent, seed=1), device_for(model_params))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(np.zeros((4, 64), "float32"), np.zeros(4), verbose=0)
    ops = {}
    for function in model.train_function._list_all_concrete_functions_for_serialization():
        for op in function.graph.get_operations():
            if op.type in ("MatMul", "BiasAdd", "Relu", "Softmax") and not op.name.startswith("gradient_tape"):
                ops[op.name] = op.device
    out["ops"] = ops
    out["variables"] = {v.name: v.device for v in model.weights}
print(json.dumps(out))
"""


def _spec(tmp_path: Path, distribution: str, placement: str = "") -> Path:
    path = tmp_path / "deploy.yaml"
    path.write_text(BASE % {"distribution": distribution, "placement": placement}, encoding="utf-8")
    return path


def test_mirrored_over_two_logical_cpus_trains_with_two_replicas(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "{kind: mirrored, devices: ['CPU:0', 'CPU:1'], scale_learning_rate: true}")
    out = run_with_logical_cpus(RUN_PLAN, str(spec), str(tmp_path))
    metrics = out["metrics"]
    distribution = metrics["distribution"]
    assert metrics["replicas"] == 2
    assert distribution["kind"] == "mirrored"
    assert distribution["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert distribution["global_batch_size"] == 64  # batch_size is per replica
    assert distribution["scale_learning_rate"] is True
    assert out["learning_rate"] == pytest.approx(2 * 2.0e-3)  # scaled by the 2 replicas, as asked
    assert metrics["accuracy"] >= 0.85
    assert metrics["epochs"] == 10


def test_mirrored_keeps_the_learning_rate_unless_asked(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "{kind: mirrored, devices: ['CPU:0', 'CPU:1']}")
    out = run_with_logical_cpus(RUN_PLAN, str(spec), str(tmp_path))
    assert out["metrics"]["replicas"] == 2
    assert out["learning_rate"] == pytest.approx(2.0e-3)


def test_placement_puts_each_layer_group_on_its_device(tmp_path: Path) -> None:
    placement = ("  placement:\n"
                 "    - {device: 'CPU:0', layers: [hidden]}\n"
                 "    - {device: 'CPU:1', layers: [logits]}")
    spec = _spec(tmp_path, "{kind: default}", placement)
    out = run_with_logical_cpus(RUN_PLAN, str(spec), str(tmp_path))
    assert out["metrics"]["placement"] == {"hidden": "CPU:0", "logits": "CPU:1"}
    assert out["metrics"]["replicas"] == 1
    assert out["metrics"]["accuracy"] >= 0.85
    variables = out["variables"]
    assert variables["hidden/kernel:0"].endswith("/device:CPU:0")
    assert variables["logits/kernel:0"].endswith("/device:CPU:1")
    ops = out["ops"]
    for name in ("model/hidden/MatMul", "model/hidden/BiasAdd", "model/hidden/Relu"):
        assert ops[name] == "/device:CPU:0", ops
    for name in ("model/logits/MatMul", "model/logits/BiasAdd", "model/logits/Softmax"):
        assert ops[name] == "/device:CPU:1", ops


def test_placement_on_a_device_this_machine_lacks_names_the_spec_line(tmp_path: Path) -> None:
    placement = ("  placement:\n"
                 "    - {device: 'CPU:0', layers: [hidden]}\n"
                 "    - {device: 'CPU:1', layers: [logits]}")
    spec = _spec(tmp_path, "{kind: default}", placement)
    completed = subprocess.run([*tfspec_command(), "run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "c"),
                                "--dist-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=600,
                               env=clean_env())
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert (f"{spec}:16:8: model.placement[1].device: CPU:1 is not available on this machine (visible: CPU:0)"
            in completed.stderr), completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr


def test_mirrored_over_a_missing_device_names_the_spec_line(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "{kind: mirrored, devices: ['CPU:0', 'GPU:0']}")
    completed = subprocess.run([*tfspec_command(), "run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "c"),
                                "--dist-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=600,
                               env=clean_env())
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert "training.distribution.devices[1]: device GPU:0 is not available here (visible: CPU:0)" in completed.stderr
    assert f"{spec}:" in completed.stderr
