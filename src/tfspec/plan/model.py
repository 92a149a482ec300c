"""``Plan`` and ``Step``: what ``plan.json`` holds, read back with :meth:`Plan.from_json`."""

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializeAsAny, ValidationError, model_validator

from .common import Params
from .json_text import indented_json
from .kinds import STEP_KIND_TABLE, parse_params, step_kind

__all__ = ["PLAN_SCHEMA_VERSION", "PlanError", "SpecInfo", "TargetInfo", "Step", "Plan", "canonical_json",
           "fingerprint"]

# 2: typed params per step kind, `root`, `spec.file` and `spec.dist_name`; 3: the train step's `metric`, and
# `targets` (each target's name and kind); 4: params typed all the way down (model, layers, fit, optimizer,
# schedule, source, storage, gates, android, teacher).
PLAN_SCHEMA_VERSION = 4


class PlanError(ValueError):
    """plan.json cannot be used: unreadable, another schema version, or a step that does not check out."""


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the byte form every fingerprint hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def fingerprint(kind: str, params: Mapping[str, Any], input_fingerprints: list[str], versions: Mapping[str, str]) -> str:
    """sha256 of the step kind, its params (JSON form), its inputs' fingerprints and the tool versions."""
    payload = canonical_json({"kind": kind, "params": params, "inputs": input_fingerprints, "versions": dict(versions)})
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpecInfo(_Frozen):
    """Which spec the plan was compiled from.

    Attributes:
        name: the spec's ``name``.
        version: the spec's ``version``.
        sha256: of the spec file's text.
        environment: the overlay applied, if any.
        file: the spec file, relative to the plan root (the CLI reads it to show ``file:line:col`` of a
            key a step blames); None when compiled from text.
        dist_name: ``<name>`` or ``<name>-<environment>``: the folder name of its build and dist output.
    """

    name: str
    version: int
    sha256: str
    environment: str | None
    file: str | None
    dist_name: str


class TargetInfo(_Frozen):
    """A target of the spec, as the runtime names it (the report's rows say its kind).

    Attributes:
        name: the target's ``name``.
        kind: its ``kind`` (``tflite``, ``tf_serving``, ``kserve``, ...).
    """

    name: str
    kind: str


class Step(_Frozen):
    """One unit of runtime work.

    Attributes:
        id: unique, stable name (``train``, ``compress.0.prune``, ``android.tflite``).
        kind: one of the step-kind table's (``kinds.py``); the runtime has one module per kind.
        target: the target this step belongs to, if any.
        inputs: ids of the steps whose outputs this step consumes.
        outputs: files or folders the step produces, relative to its cache entry.
        params: the typed params of its kind: everything the step needs (it never reads the spec).
        fingerprint: content hash of kind, params, inputs' fingerprints and tool versions.
    """

    id: str
    kind: str
    target: str | None = None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: SerializeAsAny[Params]
    """Validated as the params model of ``kind`` (see ``_params_of_kind``), not as a union of every kind."""
    fingerprint: str

    @model_validator(mode="before")
    @classmethod
    def _params_of_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" in data and "params" in data:
            if data["kind"] not in STEP_KIND_TABLE:
                raise ValueError(f"unknown step kind {data['kind']!r} (this tfspec knows {', '.join(STEP_KIND_TABLE)})")
            try:
                params = parse_params(data["kind"], data["params"])
            except ValidationError as error:  # name the params key, not the union member pydantic tried
                first = error.errors()[0]
                where = ".".join(str(part) for part in ("params", *first["loc"]))
                raise ValueError(f"{where}: {first['msg']}") from None
            data = {**data, "params": params}
        return data

    def params_json(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "target": self.target, "inputs": list(self.inputs),
                "outputs": list(self.outputs), "params": self.params_json(), "fingerprint": self.fingerprint}


class Plan(_Frozen):
    """The DAG of steps for one spec, steps in a topological order: the whole input of ``tfspec run``.

    Attributes:
        schema_version: :data:`PLAN_SCHEMA_VERSION`; another one is refused.
        tfspec_version: the compiler that wrote it.
        runtime_versions: the tool versions every fingerprint includes.
        spec: which spec it came from.
        root: the folder relative input paths (data, builders, teachers) are resolved against, relative to
            the folder of ``plan.json``; None when compiled without an output folder (the caller says).
        targets: the spec's targets with their kinds, in spec order (the report's rows say each one's
            kind from here). Not part of any fingerprint.
        steps: the steps.
    """

    schema_version: int = PLAN_SCHEMA_VERSION
    tfspec_version: str
    runtime_versions: dict[str, str]
    spec: SpecInfo
    root: str | None
    targets: tuple[TargetInfo, ...] = ()
    steps: tuple[Step, ...]

    # Convenience views kept from the first plan type.
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> int:
        return self.spec.version

    @property
    def spec_sha256(self) -> str:
        return self.spec.sha256

    @property
    def environment(self) -> str | None:
        return self.spec.environment

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def target_kind(self, name: str) -> str | None:
        """The kind of the target named ``name`` (None when the plan does not record it)."""
        return next((t.kind for t in self.targets if t.name == name), None)

    def model_step_id(self) -> str:
        """Id of the step producing the final Keras model (the last compression stage, or ``train``)."""
        return [s.id for s in self.steps if step_kind(s.kind).makes_model][-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "tfspec_version": self.tfspec_version,
            "runtime_versions": dict(self.runtime_versions),
            "spec": self.spec.model_dump(mode="json"),
            "root": self.root,
            "targets": [t.model_dump(mode="json") for t in self.targets],
            "steps": [s.to_json() for s in self.steps],
        }

    def to_text(self) -> str:
        return indented_json(self.to_json()) + "\n"  # json.dumps(..., indent=2, sort_keys=True), faster

    def root_dir(self, plan_file: str | Path) -> Path | None:
        """The recorded root as a folder, given where ``plan.json`` is."""
        return None if self.root is None else (Path(plan_file).parent / self.root)

    def check_fingerprints(self) -> None:
        """Every step's fingerprint recomputed: a hand-edited plan would otherwise reuse another's cache."""
        by_id: dict[str, str] = {}
        for step in self.steps:
            missing = [i for i in step.inputs if i not in by_id]
            if missing:
                raise PlanError(f"step {step.id}: inputs {missing} are not earlier steps of the plan")
            expected = fingerprint(step.kind, step.params_json(), [by_id[i] for i in step.inputs], self.runtime_versions)
            if expected != step.fingerprint:
                raise PlanError(f"step {step.id}: its fingerprint does not match its params (was plan.json edited?)")
            by_id[step.id] = step.fingerprint

    @classmethod
    def from_json(cls, value: str | bytes | Mapping[str, Any]) -> "Plan":
        """Parse ``plan.json`` (text or its parsed object); raises :class:`PlanError` with one line."""
        try:
            data = json.loads(value) if isinstance(value, (str, bytes)) else dict(value)
        except json.JSONDecodeError as error:
            raise PlanError(f"not JSON: {error}") from None
        if not isinstance(data, dict):
            raise PlanError("not a plan: the top level is not an object")
        version = data.get("schema_version")
        if version != PLAN_SCHEMA_VERSION:
            raise PlanError(f"plan schema version {version!r}, this tfspec reads {PLAN_SCHEMA_VERSION} "
                            "(rebuild it with this tfspec)")
        try:
            plan = cls.model_validate(data)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise PlanError(f"{where}: {message}" + (f" (and {error.error_count() - 1} more)"
                                                      if error.error_count() > 1 else "")) from None
        plan.check_fingerprints()
        return plan
