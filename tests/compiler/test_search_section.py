"""The ``search`` section, compiler side: overlays built from key paths, checks before any trial, no Optuna."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tfspec
from tfspec.compiler.pipeline import resolve_expanded
from tfspec.compiler.search import overlay_for, parse_key_path, resolve_overlaid, study_content, study_name
from tfspec.spec.loader import load_yaml_text
from tfspec_testing import ROOT, tfspec_command

BASE = (ROOT / "tests" / "data" / "invalid_specs" / "valid_base.yaml").read_text(encoding="utf-8")
SEARCH = """\
search:
  parameters:
    - kind: int
      path: model.layers[0].units
      low: 8
      high: 64
    - kind: choice
      path: targets[0].quantization.kind
      choices: [int8, dynamic]
  objective: {kind: minimize, target: android}
"""


def test_key_paths() -> None:
    assert parse_key_path("model.layers[0].units") == ("model", "layers", 0, "units")
    assert parse_key_path("compression[1].target_sparsity") == ("compression", 1, "target_sparsity")


def test_overlay_is_sparse_down_to_the_first_list_and_matches_targets_by_name() -> None:
    tree = load_yaml_text(BASE, "s.yaml").tree
    overlay = overlay_for(tree, {("model", "layers", 0, "units"): 16, ("training", "optimizer", "learning_rate"): 0.01,
                                 ("compression", 0, "target_sparsity"): 0.9,
                                 ("targets", 1, "batching", "max_batch_size"): 64})
    assert overlay["model"] == {"layers": [{**tree["model"]["layers"][0], "units": 16}, tree["model"]["layers"][1]]}
    assert overlay["training"] == {"optimizer": {"learning_rate": 0.01}}
    assert overlay["compression"] == [{**tree["compression"][0], "target_sparsity": 0.9}]
    assert overlay["targets"] == [{"name": "serving", "batching": {"max_batch_size": 64}}]
    assert tree["model"]["layers"][0]["units"] == 32  # the base tree is not changed


def test_a_changed_kind_drops_the_keys_the_new_kind_does_not_take() -> None:
    document = load_yaml_text(BASE, "s.yaml")
    resolved, overlay = resolve_overlaid(document, {("targets", 0, "quantization", "kind"): "dynamic"},
                                         resolve_expanded)
    assert overlay["targets"] == [{"name": "android", "quantization": {"kind": "dynamic",
                                                                       "representative_samples": None}}]
    assert resolved.spec.targets[0].quantization.kind == "dynamic"


def test_a_valid_search_section_compiles_and_names_its_study_by_content() -> None:
    result = tfspec.compile("s.yaml", text=BASE + SEARCH, environ={})
    assert result.ok, result.diagnostics
    assert result.plan is not None and not any(s.id.startswith("search") for s in result.plan.steps)
    changed = tfspec.compile("s.yaml", text=BASE + SEARCH.replace("high: 64", "high: 96"), environ={})
    assert result.resolved is not None and changed.resolved is not None
    content = study_content(result.resolved, result.inputs)
    assert study_name("digits", content) == study_name("digits", dict(content))
    assert study_name("digits", content) != study_name("digits", study_content(changed.resolved, changed.inputs))


def test_a_kserve_target_can_be_the_objective() -> None:
    """Its verify step measures what a tf_serving target's does (it was refused as 'not measured')."""
    kserve = "  - {kind: kserve, name: kserve, model_store: {base_path: 's3://models/digits'}}\n"
    text = BASE.replace("environments:\n", kserve + "environments:\n", 1)
    result = tfspec.compile("s.yaml", text=text + SEARCH.replace("target: android", "target: kserve"), environ={})
    assert result.ok, [d.format() for d in result.diagnostics]
    refused = tfspec.compile("s.yaml", text=text + SEARCH.replace("target: android", "target: cluster"), environ={})
    assert [d.message for d in refused.diagnostics] == [
        "target 'cluster' is not measured (only kserve, tf_serving and tflite targets are)"]


def test_search_exits_2_before_optuna_or_a_trial_and_writes_nothing(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(BASE + SEARCH.replace("low: 8", "low: 0"), encoding="utf-8")
    proc = subprocess.run([*tfspec_command(), "search", spec.name], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0].startswith("deploy.yaml:40:7: search.parameters[0].low: model.layers[0].units = 0 is not a valid spec")
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy.yaml"]


def test_the_compiler_imports_neither_optuna_nor_tensorflow(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(BASE + SEARCH, encoding="utf-8")
    code = ("import sys\nfrom tfspec.cli import cli\n"
            "try:\n    cli.main(['validate', sys.argv[1]], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "print('IMPORTED', sorted({m.split('.')[0] for m in sys.modules} & {'optuna', 'tensorflow', 'tf_keras'}))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, cwd=ROOT)
    assert "IMPORTED []" in proc.stdout, proc.stdout + proc.stderr


def test_an_overlay_file_is_used_for_its_environment_and_its_errors_name_it(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(BASE, encoding="utf-8")
    overlay = tmp_path / "deploy.searched.env.yaml"
    overlay.write_text("# chosen\ntraining:\n  batch_size: 16\ntargets:\n  - name: android\n"
                       "    quantization: {kind: dynamic, representative_samples: null}\n", encoding="utf-8")
    result = tfspec.compile(spec, env="searched", environ={})
    assert result.ok, result.diagnostics
    assert result.resolved is not None and result.resolved.spec.training.batch_size == 16
    assert result.resolved.spec.targets[0].quantization.kind == "dynamic"
    overlay.write_text("training:\n  batch_size: 0\n", encoding="utf-8")
    result = tfspec.compile(spec, env="searched", environ={})
    assert [d.format() for d in result.diagnostics] == [
        f"{overlay}:2:3: training.batch_size: must be at least 1 (got 0)"]
    assert tfspec.compile(spec, environ={}).ok  # not selected: not read


def test_a_path_to_a_whole_section_or_target_is_one_error_not_a_crash() -> None:
    for path in ("compression", "targets[0]", "training"):
        text = BASE + SEARCH.replace("path: model.layers[0].units", f'path: "{path}"')
        result = tfspec.compile("s.yaml", text=text, environ={})
        assert [d.format() for d in result.diagnostics] == [
            f"s.yaml:39:7: search.parameters[0].path: {path!r} names a whole section or target, not one value "
            "(hint: name a value inside it, e.g. targets[0].quantization.kind)"]
