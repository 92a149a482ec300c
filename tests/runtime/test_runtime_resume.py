"""A training run killed with SIGKILL resumes from its BackupAndRestore checkpoint."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime_testing import FAST_SPEC, compile_text
from tfspec.runtime.cache import StepCache

pytestmark = pytest.mark.slow

EPOCHS = 30


def _rows(path: Path) -> int:
    try:
        with open(path, newline="") as handle:
            return sum(1 for _ in csv.DictReader(handle))
    except (OSError, csv.Error):
        return 0


def test_killed_training_resumes_from_the_last_finished_epoch(tmp_path: Path) -> None:
    text = FAST_SPEC.read_text()
    text = text.replace("epochs: 12", f"epochs: {EPOCHS}").replace("batch_size: 32", "batch_size: 8")
    text = text.replace("  early_stopping: {monitor: val_loss, patience: 5, restore_best_weights: true}\n", "")
    result = compile_text(tmp_path, text)
    train_fp = result.plan.step("train").fingerprint
    cache = StepCache(tmp_path / ".tfspec" / "cache")
    log = cache.root / "checkpoints" / train_fp / "history.csv"
    command = [sys.executable, "-m", "tfspec", "run", str(tmp_path / "deploy.yaml"), "--quiet",
               "--dist-dir", str(tmp_path / "dist")]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "CI": "true"})
    deadline = time.monotonic() + 300
    try:
        while _rows(log) < 2:
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "training did not reach two epochs in time"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    finished_before_kill = _rows(log)
    assert 2 <= finished_before_kill < EPOCHS
    assert cache.has(result.plan.step("data").fingerprint)
    assert not cache.has(train_fp)  # the killed step left no entry ...
    leftovers = [p.name for p in cache.root.glob(".*.tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(f".{train_fp[:12]}.{process.pid}-")  # ... only scratch

    rerun = subprocess.run(command + ["--json"], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, "CI": "true"}, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    payload = json.loads(rerun.stdout)
    assert payload["cached"] == ["data"]
    assert f"removed {leftovers[0]}, the unfinished output of a killed run" in rerun.stderr
    assert list(cache.root.glob(".*.tmp")) == []
    train = next(s for s in payload["report"]["steps"] if s["id"] == "train")["metrics"]
    # BackupAndRestore saves after the CSV row of the same epoch: a kill between the two costs that epoch.
    assert finished_before_kill - 1 <= train["resumed_from_epoch"] <= finished_before_kill
    assert train["epochs_run"] == EPOCHS - train["resumed_from_epoch"]
    assert train["epochs"] == EPOCHS
    assert len(payload["report"]["history"]["train"]["loss"]) == EPOCHS
    assert train["accuracy"] >= 0.9
    assert cache.has(train_fp)
    assert not (cache.root / "checkpoints" / train_fp).exists()  # removed once the step is cached
