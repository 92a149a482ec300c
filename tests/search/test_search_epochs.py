"""The train step reports every epoch to an observer; an observer that raises stops it before it is cached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search_testing import write_spec
from tfspec.compiler.pipeline import compile_spec
from tfspec.runtime.epochs import observing_epochs
from tfspec.runtime.executor import run_plan
from tfspec.running import run_inputs_from_compiled
from tfspec.base.errors import TfspecError

pytestmark = pytest.mark.slow


class Stop(TfspecError):
    pass


def test_an_observer_sees_each_epoch_and_can_stop_the_step_uncached(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, epochs=4)
    result = compile_spec(spec)
    assert result.ok, result.diagnostics
    seen: list[tuple[str, int, float]] = []

    def observe(step_id: str, epoch: int, logs: dict[str, float]) -> None:
        seen.append((step_id, epoch, logs["val_accuracy"]))
        if epoch == 1:
            raise Stop("enough")

    cache = tmp_path / "cache"
    with pytest.raises(Stop), observing_epochs(observe):
        run_plan(run_inputs_from_compiled(result), cache_dir=cache, dist_dir=tmp_path / "dist", quiet=True,
                 log=lambda line: None)
    assert [(s, e) for s, e, _ in seen] == [("train", 0), ("train", 1)]
    assert all(0.0 <= v <= 1.0 for _, _, v in seen)
    cached = sorted(json.loads(m.read_text(encoding="utf-8"))["step"] for m in cache.glob("*/.complete.json"))
    assert cached == ["data"]  # the stopped train step left no entry
    assert not list(cache.glob(".*.tmp"))
