"""Command lines and files a user (or a pull request) can get wrong: each is one located line, exit 2, never a
traceback, never a megabyte of output — explain's KEY.PATH and -e, fleet's report.json, the -e of every command,
numbers that would expand without bound, credentials where a variable name belongs, union and pattern errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import tfspec
from tfspec_testing import EXAMPLE, tfspec_command

TEXT = EXAMPLE.read_text(encoding="utf-8")


def _run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([*tfspec_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def _one(proc: subprocess.CompletedProcess[str], start: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[-1] == "1 problem found" and len(lines) == 2, proc.stderr
    assert lines[0].startswith(start), lines[0]
    assert len(lines[0]) < 400
    return lines[0]


@pytest.fixture()
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "deploy.yaml"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _compile_one(text: str, env: str | None = None, environ: dict[str, str] | None = None) -> str:
    result = tfspec.compile("deploy.yaml", text=text, env=env, environ=environ or {})
    assert not result.ok
    [diagnostic] = result.diagnostics
    line = diagnostic.format()
    assert len(line) < 400, line
    return line


# --- item 8: explain ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "start"), [
    ("targets[5]", "deploy.yaml:30:1: targets: targets has 3 items: there is no [5]"),
    ("targets[99999999999999999999]", "deploy.yaml:30:1: targets: targets has 3 items: there is no [9999"),
    ("", "deploy.yaml:1:1: <root>: KEY.PATH '' is not a key path"),
    (" ", "deploy.yaml:1:1: <root>: KEY.PATH ' ' is not a key path"),
    ("x" * 5000, "deploy.yaml:1:1: x"),
])
def test_explain_bad_key_paths_are_one_line(spec: Path, key: str, start: str) -> None:
    _one(_run(spec.parent, "explain", "deploy.yaml", key), start)


def test_explain_an_overlay_target_named_by_a_list_is_one_line(spec: Path) -> None:
    spec.write_text(TEXT.replace("prod: {targets: [{name: serving,", "prod: {targets: [{name: [serving],"), "utf-8")
    _one(_run(spec.parent, "explain", "deploy.yaml", "targets", "-e", "prod"),
         "deploy.yaml:50:21: environments.prod.targets[0].name: a target's name is a text")


def test_explain_echoes_values_cut(spec: Path) -> None:
    proc = _run(spec.parent, "explain", "deploy.yaml", "targets")
    assert proc.returncode == 0
    assert all(len(line) < 200 for line in proc.stdout.splitlines()), proc.stdout


# --- item 9: fleet reads report.json as untrusted ---------------------------------------------------------

@pytest.mark.parametrize("report", [
    {"spec": {}, "targets": ["android"]},
    {"spec": {}, "targets": {"android": "passed"}},
    {"spec": {}, "targets": {"android": {"gates": [{"name": ["max_size_kb"], "value": 1}]}}},
    {"spec": {}, "targets": {"android": {"gates": "all"}}, "passed": "yes"},
    "[" * 100_000 + "]" * 100_000,
])
def test_fleet_survives_any_report_json(tmp_path: Path, report: object) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "deploy.yaml").write_text(TEXT, encoding="utf-8")
    (tmp_path / "dist" / "digits").mkdir(parents=True)
    text = report if isinstance(report, str) else json.dumps(report)
    (tmp_path / "dist" / "digits" / "report.json").write_text(text, encoding="utf-8")
    proc = _run(tmp_path, "fleet", "specs", "--json")
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)["specs"]
    assert row["name"] == "digits"


# --- item 10: -e is a name, never a path ------------------------------------------------------------------

@pytest.mark.parametrize("env", ["a/b", "../x", "x" * 300, "Prod", ""])
@pytest.mark.parametrize("command", ["validate", "build", "explain"])
def test_a_bad_environment_name_is_one_line(spec: Path, env: str, command: str) -> None:
    args = [command, "deploy.yaml", *(["model"] if command == "explain" else []), "-e", env]
    line = _one(_run(spec.parent, *args), "deploy.yaml:49:1: environments: ")
    assert "is not an environment name" in line
    assert not (spec.parent / "build").exists()


# --- item 5: numbers are capped where they are read ------------------------------------------------------

@pytest.mark.parametrize(("old", "new", "start"), [
    ("  split:", "  num_classes: 2147483647\n  split:", "deploy.yaml:10:3: data.num_classes: must be at most 100000"),
    ("input_shape: [64]", "input_shape: [30000000]", "deploy.yaml:14:3: model.input_shape: one example of this shape "
                                                      "holds 30,000,000 values; at most 16,777,216"),
    ("input_shape: [64]", "input_shape: [2147483647, 2147483647]",
     "deploy.yaml:14:3: model.input_shape: one example of this shape holds about 10^18 values"),
])
def test_numbers_that_expand_are_capped_at_their_line(old: str, new: str, start: str) -> None:
    assert _compile_one(TEXT.replace(old, new, 1)).startswith(start)


def test_an_output_layer_that_makes_two_billion_classes_is_capped() -> None:
    text = TEXT.replace("source: {kind: sklearn_digits}", "source: {kind: npz, path: d.npz, features: x, labels: y}")
    text = text.replace("units: 10,", "units: 2147483647,")
    line = _compile_one(text)
    assert "model.layers[2].units: 2,147,483,647 classes; at most 100,000 are supported" in line


def test_a_huge_input_shape_from_the_cli_is_one_line_fast(spec: Path) -> None:
    spec.write_text(TEXT.replace("input_shape: [64]", "input_shape: [2147483647, 2147483647]"), encoding="utf-8")
    _one(_run(spec.parent, "build", "deploy.yaml"), "deploy.yaml:14:3: model.input_shape:")
    assert not (spec.parent / "build").exists()


# --- item 12: credentials where a variable name belongs --------------------------------------------------

def test_an_access_key_where_its_variable_name_belongs_is_refused_and_not_echoed() -> None:
    text = TEXT.replace("  split:", "  storage: {credentials: {access_key_id_env: AKIAIOSFODNN7EXAMPLE}}\n  split:", 1)
    line = _compile_one(text)
    assert line.startswith("deploy.yaml:10:27: data.storage.credentials.access_key_id_env: this is an AWS access key id")
    assert "AKIAIOSFODNN7EXAMPLE" not in line


def test_a_secret_variable_is_never_expanded_into_the_outputs() -> None:
    text = TEXT.replace("description: Handwritten digit classifier (8x8 grayscale)",
                        'description: "key ${AWS_SECRET_ACCESS_KEY}"')
    assert text != TEXT
    line = _compile_one(text, environ={"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG"})
    assert "${AWS_SECRET_ACCESS_KEY} looks like a secret" in line and "wJalr" not in line


def test_a_store_key_option_holding_a_key_is_refused(tmp_path: Path) -> None:
    proc = _run(tmp_path, "run", "--plan", "plan.json", "--step", "data", "--store", "s3://bucket/x",
                "--store-key-env", "AKIAIOSFODNN7EXAMPLE")
    assert proc.returncode == 2 and "AKIAIOSFODNN7EXAMPLE" not in proc.stderr
    assert "takes the NAME of the variable" in proc.stderr


# --- items 13 and 14: one line per problem, every bound ------------------------------------------------

def test_a_value_no_branch_of_a_union_takes_is_one_line() -> None:
    text = TEXT.replace("learning_rate: {schedule: exponential_decay, initial: 1.0e-3, decay_steps: 500, decay_rate: 0.9}",
                        'learning_rate: "fast"')
    assert text != TEXT
    assert _compile_one(text).endswith("training.optimizer.learning_rate: expected a number or a mapping (got 'fast')")


def test_a_blank_key_is_named_in_the_path() -> None:
    assert _compile_one(TEXT.replace("version: 3", 'version: 3\n"": 1', 1)).startswith('deploy.yaml:7:1: [""]: unknown key')


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("  split:", "  external_locations: true\n  storage: {endpoint_url: 'http://minio:99999'}\n  split:",
     "port 1-65535"),
    ("  split:", "  external_locations: true\n  storage: {endpoint_url: 'ftp://minio'}\n  split:", "an http:// or https://"),
])
def test_endpoint_urls_say_what_is_expected(old: str, new: str, expected: str) -> None:
    line = _compile_one(TEXT.replace(old, new, 1))
    assert "data.storage.endpoint_url: invalid value" in line and expected in line


def test_workflow_store_says_what_is_expected() -> None:
    text = TEXT + "workflow: {image: 'registry.example.com/ml/digits:3', store: 'S3://Bucket'}\n"
    line = _compile_one(text)
    assert "workflow.store: invalid value 'S3://Bucket' (hint: an S3 location s3://bucket" in line


def test_workflow_gpus_stop_at_16_like_every_gpu_field() -> None:
    text = TEXT + "workflow: {image: 'registry.example.com/ml/digits:3', store: 's3://bucket', gpus: 2147483647}\n"
    assert "workflow.gpus: must be at most 16" in _compile_one(text)


def test_a_search_step_larger_than_its_range_is_refused() -> None:
    text = TEXT + ("search:\n  parameters:\n    - {kind: int, path: training.epochs, low: 1, high: 5, step: 10}\n"
                   "  objective: {kind: minimize, metric: size_kb, target: android}\n  budget: {trials: 4}\n")
    assert "step 10 is larger than the range 1..5" in _compile_one(text)


def test_every_spec_pattern_has_a_hint() -> None:
    """A value that does not match a pattern says what is expected, never only "invalid value"."""
    import types
    import typing
    from typing import Union, get_args, get_origin

    from pydantic import BaseModel
    from pydantic.fields import FieldInfo

    from tfspec.compiler.parse import _PATTERN_HINTS
    from tfspec.spec import Spec

    seen: set[type] = set()
    missing: dict[str, str] = {}

    def walk(annotation: object, metadata: list[object], where: str) -> None:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            inner, *extra = get_args(annotation)
            walk(inner, list(extra) + metadata, where)
        elif origin in (Union, types.UnionType, list, dict, tuple):
            for arg in get_args(annotation):
                walk(arg, metadata if origin in (Union, types.UnionType) else [], where)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in seen:
                seen.add(annotation)
                for name, field in annotation.model_fields.items():
                    walk(field.annotation, list(field.metadata), f"{annotation.__name__}.{name}")
        for item in metadata:
            for constraint in (list(item.metadata) if isinstance(item, FieldInfo) else [item]):
                pattern = getattr(constraint, "pattern", None)
                if pattern and pattern not in _PATTERN_HINTS:
                    missing[pattern] = where

    walk(Spec, [], "Spec")
    assert not missing, missing
