"""The wheel as users get it: built from a clean copy (sdist, then the wheel from the sdist), installed
not editable into fresh venvs, every command run through the venv's own ``tfspec`` script outside the
checkout. With the runtime extra: validate, build (a spec, and the GitOps example as a folder), fleet,
schema, explain and a run of the digits example (shortened). Without extras (``pipx install tfspec``):
the compiler works and never imports TensorFlow, the runtime commands say how to get the runtime."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from shipped_testing import Venv, imported

from tfspec_testing import ROOT, tfspec_command

pytestmark = pytest.mark.shipped

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
SHIPPED_SUFFIXES = {".py", ".j2", ".json", ".md"}
RUNTIME_HINT = "pip install 'tfspec[runtime]'"


def _source_files() -> set[str]:
    source = ROOT / "src" / "tfspec"
    return {"tfspec/" + p.relative_to(source).as_posix() for p in source.rglob("*")
            if p.is_file() and p.suffix in SHIPPED_SUFFIXES and "__pycache__" not in p.parts}


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def _checkout_build(spec: Path, out: Path) -> dict[str, bytes]:
    """What this checkout's (editable) tfspec writes for ``spec``: the reference the wheel must equal."""
    done = subprocess.run([*tfspec_command(), "build", str(spec), "--out", str(out)], capture_output=True, text=True,
                          timeout=300, cwd=spec.parent)
    assert done.returncode == 0, done.stderr
    return _tree(out)


def _no_tensorflow(log: Path, commands: int) -> None:
    """Every one of ``commands`` processes recorded itself, and none imported a heavy module."""
    entries = imported(log)
    assert len(entries) == commands, entries
    assert [(args, heavy) for args, heavy in entries if heavy] == [], "imported TensorFlow/numpy"


def test_the_sdist_and_the_wheel_carry_every_shipped_file(distributions: tuple[Path, Path]) -> None:
    sdist, wheel = distributions
    assert wheel.name == f"tfspec-{VERSION}-py3-none-any.whl" and sdist.name == f"tfspec-{VERSION}.tar.gz"
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = {n for n in archive.namelist() if n.startswith("tfspec/")}
        metadata = archive.read(f"tfspec-{VERSION}.dist-info/METADATA").decode("utf-8")
        entry_points = archive.read(f"tfspec-{VERSION}.dist-info/entry_points.txt").decode("utf-8")
    assert in_wheel == _source_files()
    assert "tfspec = tfspec.cli:main" in entry_points
    assert re.search(r"^Requires-Dist: tensorflow==2\.21\.0; extra == \"runtime\"$", metadata, re.MULTILINE)
    with tarfile.open(sdist) as archive:
        prefix = f"tfspec-{VERSION}/src/"
        in_sdist = {n[len(prefix):] for n in archive.getnames() if n.startswith(prefix + "tfspec/")
                    and Path(n).suffix in SHIPPED_SUFFIXES}
    assert in_sdist == _source_files()


def test_the_compiler_alone_never_imports_tensorflow(bare_venv: Venv, examples: Path, tmp_path: Path) -> None:
    assert not bare_venv.packages() & {"tensorflow", "tf-keras", "numpy", "tensorflow-model-optimization"}
    log = tmp_path / "imports.log"
    version = bare_venv.run("--version", cwd=examples, log=log)
    assert version.returncode == 0, version.stderr
    assert version.stdout.splitlines() == [f"tfspec {VERSION}", f"runtime: not installed ({RUNTIME_HINT})"]
    assert bare_venv.run("validate", "digits/deploy.yaml", cwd=examples, log=log).returncode == 0
    built = bare_venv.run("build", "digits/deploy.yaml", "--out", str(tmp_path / "spec"), cwd=examples, log=log)
    assert built.returncode == 0, built.stderr
    assert _tree(tmp_path / "spec") == _checkout_build(examples / "digits" / "deploy.yaml", tmp_path / "reference")
    folder = bare_venv.run("build", "specs", "--out", "rendered", cwd=examples / "gitops", log=log)
    assert folder.returncode == 0, folder.stderr
    assert _tree(examples / "gitops" / "rendered") == _tree(ROOT / "examples" / "gitops" / "rendered")
    _no_tensorflow(log, 4)


@pytest.mark.parametrize("args", [
    ("run", "digits/deploy.yaml"),
    ("run", "digits/deploy.yaml", "--worker"),
    ("run", "--plan", "build/digits/plan.json", "--step", "data", "--store", "s3://ml-steps/digits"),
    ("report", "digits/deploy.yaml"),
], ids=["run", "worker", "store-step", "report"])
def test_runtime_commands_without_the_runtime_say_how_to_get_it(bare_venv: Venv, examples: Path,
                                                               args: tuple[str, ...]) -> None:
    assert bare_venv.run("build", "digits/deploy.yaml", cwd=examples).returncode == 0
    done = bare_venv.run(*args, cwd=examples)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith(RUNTIME_HINT), done.stderr


@pytest.mark.slow  # installs TensorFlow into a fresh venv
def test_the_installed_wheel_compiles_without_importing_tensorflow(runtime_venv: Venv, examples: Path,
                                                                    tmp_path: Path) -> None:
    log = tmp_path / "imports.log"
    version = runtime_venv.run("--version", cwd=examples, log=log)
    assert version.returncode == 0, version.stderr
    lines = version.stdout.splitlines()
    assert lines[0] == f"tfspec {VERSION}"
    assert lines[1].startswith("runtime: tensorflow 2.21.0, tf-keras 2.21.0, tensorflow-model-optimization 0.8.1, "
                               "tensorflow-serving-api 2.21.0, ai-edge-litert "), lines

    assert runtime_venv.run("validate", "digits/deploy.yaml", cwd=examples, log=log).returncode == 0
    built = runtime_venv.run("build", "digits/deploy.yaml", "--out", str(tmp_path / "spec"), cwd=examples, log=log)
    assert built.returncode == 0, built.stderr
    assert _tree(tmp_path / "spec") == _checkout_build(examples / "digits" / "deploy.yaml", tmp_path / "reference")
    gitops = examples / "gitops"
    folder = runtime_venv.run("build", "specs", "--out", "rendered", cwd=gitops, log=log)
    assert folder.returncode == 0, folder.stderr
    assert _tree(gitops / "rendered") == _tree(ROOT / "examples" / "gitops" / "rendered")

    fleet = runtime_venv.run("fleet", "specs", "--out", "rendered", "--json", cwd=gitops, log=log)
    assert fleet.returncode == 0, fleet.stderr
    assert sorted(row["name"] for row in json.loads(fleet.stdout)["specs"]) == ["digits", "digits-gpu", "digits-lite"]
    schema = runtime_venv.run("schema", cwd=examples, log=log)
    assert schema.returncode == 0
    reference = subprocess.run([*tfspec_command(), "schema"], capture_output=True, text=True, timeout=120)
    assert json.loads(schema.stdout) == json.loads(reference.stdout)
    explain = runtime_venv.run("explain", "specs/digits.yaml", "data.split.seed", cwd=gitops, log=log)
    assert explain.returncode == 0, explain.stderr
    assert "standards/base.yaml" in explain.stdout, explain.stdout
    _no_tensorflow(log, 7)


@pytest.mark.slow
def test_the_installed_wheel_runs_the_example(trained) -> None:  # noqa: ANN001
    """``tfspec run`` of the digits example, shortened (12 epochs, 4 of pruning fine-tuning instead of 40
    and 10; conftest.SHIPPED_EXAMPLE): every target within its gates."""
    output = trained.output
    assert output["ok"] is True and output["report"]["passed"] is True
    assert set(output["report"]["targets"]) == {"android", "serving"}
    dist = trained.dist
    for path in ("report.json", "report.html", "android/digits_model/src/main/assets/digits.tflite",
                 "serving/models/digits/3/saved_model.pb",
                 "serving/models/digits/3/assets.extra/tf_serving_warmup_requests", "serving/Dockerfile"):
        assert (dist / path).is_file(), path
    assert output["ran"] and not output["cached"]
