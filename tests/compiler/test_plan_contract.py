"""plan.json is the runtime's contract: typed params per step kind, read back exactly, refused when wrong."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import tfspec
from tfspec.plan import (PLAN_SCHEMA_VERSION, STEP_KINDS, EvaluateParams, Plan, PlanError, PruneParams,
                         TfliteBundleParams, TrainParams, fingerprint)
from tfspec_testing import EXAMPLE, tfspec_command


def _plan_text(env: str | None = None) -> str:
    result = tfspec.compile(EXAMPLE, env=env)
    assert result.ok
    return result.files["plan.json"]


@pytest.mark.parametrize("env", [None, "prod"])
def test_plan_json_reads_back_to_the_same_text(env: str | None) -> None:
    text = _plan_text(env)
    plan = Plan.from_json(text)
    assert plan.to_text() == text
    assert plan.schema_version == PLAN_SCHEMA_VERSION
    assert plan.spec.dist_name == ("digits-prod" if env else "digits") and plan.spec.file == EXAMPLE.name
    assert {s.kind for s in plan.steps} <= set(STEP_KINDS)


def test_step_params_are_typed_and_resolved() -> None:
    plan = Plan.from_json(_plan_text())
    prune = plan.step("compress.0.prune").params
    assert isinstance(prune, PruneParams)
    # The stage gives no learning rate: the plan holds the training optimizer's initial rate, not a gap.
    assert prune.learning_rate == 1e-3 and prune.skip_layers == [] and prune.frequency is None
    bundle = plan.step("android.bundle").params
    assert isinstance(bundle, TfliteBundleParams)
    assert bundle.assets_dir == "android/digits_model/src/main/assets" and bundle.filename == "digits.tflite"


def test_a_stage_learning_rate_and_m_by_n_are_resolved_into_the_params(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "{kind: prune, target_sparsity: 0.7," in text
    changed = text.replace("{kind: prune, target_sparsity: 0.7,", "{kind: prune, sparsity_m_by_n: [2, 4], "
                           "learning_rate: 0.0005,")
    result = tfspec.compile(tmp_path / "deploy.yaml", text=changed)
    assert result.ok, [d.format() for d in result.diagnostics]
    prune = result.plan.step("compress.0.prune").params
    assert prune.learning_rate == 0.0005 and prune.target_sparsity == 0.5 and prune.sparsity_m_by_n == [2, 4]


@pytest.mark.parametrize(("loss", "metric"), [("sparse_categorical_crossentropy", "accuracy"),
                                             ("mean_squared_error", "mae")])
def test_the_train_step_names_its_quality_metric(tmp_path: Path, loss: str, metric: str) -> None:
    """The compiler picks the metric from the loss; the runtime's train step reads it from its params."""
    spec = tmp_path / "deploy.yaml"
    spec.write_text(f"""\
api_version: tfspec/v1
name: demo
version: 1
data: {{source: {{kind: sklearn_digits}}}}
model:
  kind: sequential
  input_shape: [64]
  layers:
    - {{type: dense, units: 8, activation: relu}}
    - {{type: dense, units: {"10, activation: softmax" if metric == "accuracy" else 1}}}
training: {{loss: {loss}, metrics: [{metric}], epochs: 1}}
targets:
  - {{kind: tf_serving, name: serving}}
""", encoding="utf-8")
    result = tfspec.compile(spec)
    assert result.ok, [d.format() for d in result.diagnostics]
    train, evaluate = result.plan.step("train").params, result.plan.step("evaluate").params
    assert isinstance(train, TrainParams) and isinstance(evaluate, EvaluateParams)
    assert train.metric == evaluate.metric == metric


def test_an_edited_plan_is_refused() -> None:
    data = json.loads(_plan_text())
    train = next(s for s in data["steps"] if s["id"] == "train")
    train["params"]["epochs"] = 1
    with pytest.raises(PlanError, match=r"step train: its fingerprint does not match its params"):
        Plan.from_json(json.dumps(data))
    # re-fingerprinted consistently, it is accepted (this is what the compiler does)
    versions = data["runtime_versions"]
    by_id: dict[str, str] = {}
    for step in data["steps"]:
        step["fingerprint"] = fingerprint(step["kind"], step["params"], [by_id[i] for i in step["inputs"]], versions)
        by_id[step["id"]] = step["fingerprint"]
    assert Plan.from_json(json.dumps(data)).step("train").params.epochs == 1


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(schema_version=1), r"plan schema version 1, this tfspec reads 4"),
    # 3 held the model, the fit settings, the source, gates and teachers as loose JSON
    (lambda d: d.update(schema_version=3), r"^plan schema version 3, this tfspec reads 4 \(rebuild it with this tfspec\)$"),
    (lambda d: d["steps"][0].update(kind="teleport"), r"unknown step kind 'teleport'"),
    (lambda d: d["steps"][0]["params"].update(colour="blue"), r"^steps\.0: params\.colour: Extra inputs are not permitted$"),
    (lambda d: d["steps"][1]["params"].pop("epochs"), r"^steps\.1: params\.epochs: Field required$"),
])
def test_a_plan_from_elsewhere_fails_with_one_line(change, message: str) -> None:
    data = json.loads(_plan_text())
    change(data)
    with pytest.raises(PlanError, match=message):
        Plan.from_json(json.dumps(data))


def test_run_plan_refuses_a_build_folder_whose_files_changed(tmp_path: Path) -> None:
    spec = tmp_path / EXAMPLE.name
    shutil.copyfile(EXAMPLE, spec)
    out = tmp_path / "build" / "digits"
    assert subprocess.run([*tfspec_command(), "build", str(spec), "--out", str(out)]).returncode == 0
    assert json.loads((out / "plan.json").read_text(encoding="utf-8"))["root"] == "../.."
    (out / "serving" / "config" / "models.config").write_text("edited\n", encoding="utf-8")
    proc = subprocess.run([*tfspec_command(), "run", "--plan", str(out / "plan.json")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: {out / 'serving' / 'config' / 'models.config'}: changed since tfspec build wrote "
                                   "the plan: rebuild with tfspec build")
    (out / "plan.json").write_text("{", encoding="utf-8")
    proc = subprocess.run([*tfspec_command(), "run", "--plan", str(out / "plan.json")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {out / 'plan.json'}: not JSON:")
    assert "Traceback" not in proc.stderr


def test_run_plan_refuses_a_plan_of_another_schema_version(tmp_path: Path) -> None:
    spec = tmp_path / EXAMPLE.name
    shutil.copyfile(EXAMPLE, spec)
    out = tmp_path / "build" / "digits"
    assert subprocess.run([*tfspec_command(), "build", str(spec), "--out", str(out)]).returncode == 0
    data = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    data["schema_version"] = PLAN_SCHEMA_VERSION - 1  # what the tfspec before typed sections wrote
    (out / "plan.json").write_text(json.dumps(data), encoding="utf-8")
    proc = subprocess.run([*tfspec_command(), "run", "--plan", str(out / "plan.json")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: {out / 'plan.json'}: plan schema version {PLAN_SCHEMA_VERSION - 1}, "
                                   f"this tfspec reads {PLAN_SCHEMA_VERSION} (rebuild it with this tfspec)")
    assert not (tmp_path / "dist").exists() and not (tmp_path / ".tfspec" / "cache").exists()


@pytest.mark.parametrize("spec", [EXAMPLE, *sorted(Path(EXAMPLE).parents[1].glob("gitops/specs/*.yaml"))],
                         ids=lambda p: Path(p).name)
def test_render_steps_filled_in_afterwards_give_the_plan_built_with_them(spec: Path) -> None:
    """The compiler builds the plan once (its served fingerprints name the images render writes) and fills in
    the render steps' files afterwards: the same plan, fingerprints included, as one built with them."""
    from tfspec.compiler.pipeline import compile_spec
    from tfspec.compiler.plan import build_plan, with_rendered_files

    result = compile_spec(spec)
    assert result.ok and result.plan is not None and result.resolved is not None
    rendered = {step.target: dict(step.params.files) for step in result.plan.steps if step.kind == "render"}
    assert rendered and any(rendered.values())
    plan_file = Path(spec).name
    built_with = build_plan(result.resolved, rendered, result.inputs, spec_file=plan_file)
    filled_in = with_rendered_files(build_plan(result.resolved, None, result.inputs, spec_file=plan_file), rendered)
    assert filled_in.to_text() == built_with.to_text() == result.plan.to_text()
    assert build_plan(result.resolved, None, result.inputs, spec_file=plan_file).to_text() != built_with.to_text()
