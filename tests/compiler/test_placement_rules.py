"""The validator's ``gpu_placement`` rule: placed layers exist once, on devices the spec's hardware has.

Placement splits one replica over the GPUs of one machine, so the clusters here have one worker (several
workers train one model together only with multi_worker_mirrored, which placement does not mix with).
"""

from __future__ import annotations

from pathlib import Path

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
    - {type: dense, name: hidden, units: 32, activation: relu}
    - {type: dense, units: 16, activation: relu}
    - {type: dense, name: logits, units: 10, activation: softmax}
  placement:
%(placement)s
training:
  distribution: %(distribution)s
targets:
%(targets)s
"""

TFLITE = "  - {kind: tflite, name: mobile, quantization: {kind: none}}"


def _cluster(name: str, gpus: int) -> str:
    return (f"  - {{kind: gpu_cluster, name: {name}, workers: 1, gpus_per_worker: {gpus}, "
            "storage: {storage_class: nfs-client}}")


def _problems(tmp_path: Path, placement: list[str], targets: list[str], distribution: str = "{kind: default}") -> list[str]:
    path = tmp_path / "deploy.yaml"
    path.write_text(SPEC % {"placement": "\n".join(f"    - {p}" for p in placement), "targets": "\n".join(targets),
                            "distribution": distribution}, encoding="utf-8")
    return [d.format().split(": ", 1)[1] for d in compile_spec(path).diagnostics]


def test_gpus_within_the_cluster_target_are_accepted(tmp_path: Path) -> None:
    placement = ["{device: 'GPU:0', layers: [hidden]}", "{device: 'GPU:1', layers: [logits]}"]
    assert _problems(tmp_path, placement, [_cluster("cluster", 2)]) == []


def test_a_gpu_beyond_the_smallest_cluster_target_is_rejected(tmp_path: Path) -> None:
    placement = ["{device: 'GPU:0', layers: [hidden]}", "{device: 'GPU:1', layers: [logits]}"]
    problems = _problems(tmp_path, placement, [_cluster("big", 4), _cluster("small", 1)])
    assert problems == [
        "model.placement[1].device: device GPU:1 is not available to this spec (hint: the gpu_cluster target "
        "'small' gives each worker 1 GPU (GPU:0); raise its gpus_per_worker or place the layers on a GPU it has)"]


def test_a_cluster_without_gpus_says_so(tmp_path: Path) -> None:
    problems = _problems(tmp_path, ["{device: 'GPU:0', layers: [hidden]}"], [_cluster("cluster", 0)])
    assert problems == [
        "model.placement[0].device: device GPU:0 is not available to this spec (hint: the gpu_cluster target "
        "'cluster' gives its workers no GPU; raise its gpus_per_worker or place the layers on CPU:0)"]


def test_without_a_cluster_target_the_runtime_checks_the_devices(tmp_path: Path) -> None:
    placement = ["{device: 'GPU:0', layers: [hidden]}", "{device: 'CPU:1', layers: [logits]}"]
    assert _problems(tmp_path, placement, [TFLITE]) == []


def test_placement_does_not_mix_with_a_mirrored_strategy(tmp_path: Path) -> None:
    problems = _problems(tmp_path, ["{device: 'CPU:0', layers: [hidden]}"], [_cluster("cluster", 2)],
                         "{kind: multi_worker_mirrored}")
    assert problems == [
        "model.placement: placement splits one model replica over devices; it cannot be combined with "
        "training.distribution.kind multi_worker_mirrored (hint: use distribution kind: default with placement, "
        "or drop placement to replicate the whole model on every device)"]


def test_placed_layers_must_exist_once(tmp_path: Path) -> None:
    placement = ["{device: 'CPU:0', layers: [hidden, dense_1]}", "{device: 'CPU:0', layers: [hidden]}"]
    problems = _problems(tmp_path, placement, [TFLITE])
    assert problems == [
        "model.placement[0].layers[1]: no layer named 'dense_1' (hint: known layers: hidden, logits)",
        "model.placement[1].layers[0]: layer 'hidden' is placed twice",
    ]
