"""Shared by the compression tests: a digits spec, a run through the real executor, and model loading.

Every test writes its own spec to its tmp_path but shares one step cache per test session, so the
``data`` and ``train`` steps (identical in every spec here) run once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tfspec
from tfspec.runtime.cache import StepCache
from tfspec.runtime.executor import RunReport, run_plan
from tfspec.running import run_inputs_from_compiled
from tfspec.runtime.keras_io import load_model

SPEC = """\
api_version: tfspec/v1
name: digits
version: 1
data:
  source: {{kind: sklearn_digits}}
  split: {{validation: 0.1, test: 0.2, seed: 7}}
  preprocessing: {{rescale: 0.0625}}
model:
  kind: sequential
  input_shape: [64]
  layers:
    - {{type: dense, name: hidden, units: 64, activation: relu}}
    - {{type: dense, name: logits, units: 10, activation: softmax}}
training:
  optimizer: {{kind: adam, learning_rate: 0.002}}
  epochs: 20
  batch_size: 32
targets:
  - {target}
compression:
{stages}
"""

# A target whose only step is rendering: the run stops after the model steps and export.
RENDER_ONLY = "{kind: gpu_cluster, name: cluster, workers: 1, gpus_per_worker: 1}"
INT8_TFLITE = "{kind: tflite, name: phone, quantization: {kind: int8, representative_samples: 100}}"


class Run:
    """A finished run: the compile result, the executor's report and the step cache."""

    def __init__(self, result: tfspec.CompileResult, report: RunReport, cache: StepCache, spec: Path) -> None:
        self.result = result
        self.report = report
        self.cache = cache
        self.spec = spec

    def entry(self, step_id: str) -> Path:
        assert self.result.plan is not None
        return self.cache.path(self.result.plan.step(step_id).fingerprint)

    def metrics(self, step_id: str) -> dict[str, Any]:
        return next(s["metrics"] for s in self.report.report["steps"] if s["id"] == step_id)

    def model(self, step_id: str) -> Any:
        return load_model(self.entry(step_id), compile=False)


def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "compression-step-cache"


def write_spec(folder: Path, stages: str, target: str = RENDER_ONLY, name: str = "deploy.yaml",
               template: str = SPEC) -> Path:
    path = folder / name
    path.write_text(template.format(stages=stages, target=target), encoding="utf-8")
    return path


def run_spec(folder: Path, cache_dir: Path | None, stages: str, target: str = RENDER_ONLY,
             name: str = "deploy.yaml") -> Run:
    spec = write_spec(folder, stages, target, name)
    result = tfspec.compile(spec)
    assert result.ok, [d.format() for d in result.diagnostics]
    report = run_plan(run_inputs_from_compiled(result), cache_dir=cache_dir, dist_dir=folder / "dist", quiet=True, log=lambda line: None)
    return Run(result, report, StepCache(report.cache_dir), spec)


def kernels(model: Any) -> dict[str, Any]:
    """Layer name → kernel values (numpy), for plain and quantize-wrapped layers."""
    out = {}
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        for weight in layer.weights:
            if weight.name.rsplit("/", 1)[-1].split(":")[0] == "kernel":
                out[inner.name] = weight.numpy()
    return out
