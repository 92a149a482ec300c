"""A step's output follows from its fingerprint alone: the steps a process ran before it (and the global
random state they left) change nothing. A workflow runs each step in a fresh pod, ``tfspec run`` runs them
all in one process; both must make the same bytes (the int8 calibration samples are drawn through a
seeded ``tf.data`` shuffle, which TensorFlow combines with the global seed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from runtime_testing import FAST_SPEC
from tfspec.runtime.executor import run_step
from tfspec.running import run_inputs_from_compiled

pytestmark = pytest.mark.slow


def test_a_step_makes_the_same_bytes_whatever_ran_before_it(tmp_path: Path) -> None:
    from tfspec.compiler.pipeline import compile_spec
    from tfspec.runtime.tf import import_tf

    spec = tmp_path / "deploy.yaml"
    spec.write_text(FAST_SPEC.read_text("utf-8").replace("epochs: 12", "epochs: 2"), "utf-8")
    run = run_inputs_from_compiled(compile_spec(spec))
    cache = tmp_path / "cache"
    for step_id in ("data", "train"):
        run_step(run, step_id, cache_dir=cache, quiet=True, log=lambda line: None)
    tflite = run.plan.step("android.tflite")
    made: list[bytes] = []
    for global_seed in (None, 1234):  # as a fresh process has it; as an earlier step may leave it
        if global_seed is not None:
            tf, _ = import_tf()
            tf.random.set_seed(global_seed)
        entry = run_step(run, tflite.id, cache_dir=cache, quiet=True, force=True, log=lambda line: None)
        made.append((entry / tflite.params.filename).read_bytes())
        shutil.rmtree(entry)
    assert made[0] == made[1]
