"""A gpu_cluster job of several workers trains one model, so the spec must train with multi_worker_mirrored.

Every worker pod runs ``tfspec run --worker``; under the default or mirrored strategy each worker would
train its own model, so the runtime refuses it (``runtime/worker.py``) and the job would fail at start.
The compiler says so at build time, at the target's ``workers`` line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tfspec.compiler.pipeline import compile_spec

SPEC = """\
api_version: tfspec/v1
name: digits
version: 1
data:
  source: {kind: sklearn_digits}
model:
  kind: sequential
  input_shape: [64]
  layers:
    - {type: dense, units: 16, activation: relu}
    - {type: dense, units: 10, activation: softmax}
training:
  distribution: {kind: %(kind)s}
targets:
  - kind: gpu_cluster
    name: cluster
    workers: %(workers)d
    gpus_per_worker: 1
    storage: {storage_class: nfs-client}
"""


def _problems(tmp_path: Path, kind: str, workers: int) -> list[str]:
    path = tmp_path / "deploy.yaml"
    path.write_text(SPEC % {"kind": kind, "workers": workers}, encoding="utf-8")
    return [d.format() for d in compile_spec(path).diagnostics]


@pytest.mark.parametrize("kind", ["default", "mirrored"])
def test_several_workers_need_multi_worker_mirrored(tmp_path: Path, kind: str) -> None:
    assert _problems(tmp_path, kind, 4) == [
        f"{tmp_path / 'deploy.yaml'}:17:5: targets[0].workers: 4 workers train one model together only with "
        f"multi_worker_mirrored; this spec trains with {kind} (hint: set training.distribution.kind: "
        "multi_worker_mirrored, or workers: 1)"]


@pytest.mark.parametrize(("kind", "workers"), [("multi_worker_mirrored", 4), ("default", 1), ("mirrored", 1)])
def test_one_worker_or_multi_worker_mirrored_compiles(tmp_path: Path, kind: str, workers: int) -> None:
    assert _problems(tmp_path, kind, workers) == []
