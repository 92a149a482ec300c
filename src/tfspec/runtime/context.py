"""What a step module receives: its plan step, where its inputs are, and where to write.

Every step kind has one module ``tfspec.runtime.steps.<kind>`` exposing ``run(ctx: StepContext) -> dict``;
the returned dict (JSON-serialisable metrics) goes into ``metrics.json`` of the step's cache entry and
into ``report.json``. Files a step writes go under ``ctx.out`` (the scratch folder that becomes the
cache entry only if ``run`` returns). Inputs are the finished cache entries of ``step.inputs``.

Conventions between steps (the files named in each step's ``outputs``):
* ``data``: ``manifest.json`` (source files, split rule, counts) and ``data_info.json`` (labels,
  num_classes, input_shape, rescale, mean, std, memory budget): no copy of the data; readers stream their
  split with ``datasets.load_dataset(entry, spec_dir)`` (see docs/data.md).
* model steps (``train``, ``prune``, ``cluster``, ``qat``, ``distill``): ``model.keras`` (tf_keras; a QAT
  model is ``model.h5``, see ``keras_io``; QAT and clustering wrappers loaded inside their tfmot
  scopes), ``history.json``, ``metrics.json``.
* ``export``: ``saved_model/`` with a ``serving_default`` signature.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfspec.plan import Params, Plan, Step

__all__ = ["StepContext", "METRICS_FILE"]

METRICS_FILE = "metrics.json"


@dataclasses.dataclass
class StepContext:
    """Everything one step may use.

    Attributes:
        step: the plan step being run (its typed ``params`` are all the configuration it gets).
        plan: the whole plan (to look up input steps by id).
        root: the plan's root folder; relative paths in params (data, builders, teachers) are relative to it.
        out: scratch folder for this step's outputs.
        inputs: step id → finished cache folder of each input step.
        quiet: no progress bars.
        log: prints one progress line.
        checkpoint_dir: a folder keyed by the step fingerprint that outlives a failed or killed run
            (``BackupAndRestore`` checkpoints); the executor removes it once the step is cached.
    """

    step: Step
    plan: Plan
    root: Path
    out: Path
    inputs: dict[str, Path]
    quiet: bool = False
    log: Callable[[str], None] = print
    checkpoint_dir: Path | None = None

    @property
    def params(self) -> Params:
        return self.step.params

    def input_of_kind(self, *kinds: str) -> Path:
        """Cache folder of the (single) input step of one of ``kinds``."""
        matches = [self.inputs[i] for i in self.step.inputs if self.plan.step(i).kind in kinds]
        if len(matches) != 1:
            raise LookupError(f"step {self.step.id} has {len(matches)} inputs of kind {kinds}")
        return matches[0]

    def input_step(self, *kinds: str) -> Step:
        matches = [self.plan.step(i) for i in self.step.inputs if self.plan.step(i).kind in kinds]
        if len(matches) != 1:
            raise LookupError(f"step {self.step.id} has {len(matches)} inputs of kind {kinds}")
        return matches[0]

    def write_json(self, name: str, value: Any) -> Path:
        path = self.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path
