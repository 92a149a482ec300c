"""examples/gitops: specs validate, the committed rendered/ equals a fresh build, the recipes are valid."""

from __future__ import annotations

import glob
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tfspec.compiler.pipeline import compile_spec
from tfspec.io.batch import CACHE_FILE, build_folder, discover_specs

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "gitops"
REGENERATE = "cd examples/gitops && tfspec build specs/ --out rendered/ --prune"
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` but the build cache and what a killed build may have left in this checkout
    (hidden ``.<name>.<pid>-<start>.<random>.tmp`` staging folders): the committed output is what counts."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != CACHE_FILE
            and not any(part.startswith(".") and part.endswith(".tmp") for part in p.relative_to(folder).parts)}


def test_every_spec_validates() -> None:
    specs = discover_specs(EXAMPLE / "specs")
    assert [p.name for p in specs] == ["digits-gpu.yaml", "digits-lite.yaml", "digits.yaml"]
    for spec in specs:
        result = compile_spec(spec)
        assert result.ok, "\n".join(d.format() for d in result.diagnostics)


def test_committed_output_equals_a_fresh_build(tmp_path: Path) -> None:
    # The plans record the specs' folder relative to their output (../../specs): keep that layout.
    shutil.copytree(EXAMPLE / "specs", tmp_path / "specs")
    shutil.copytree(EXAMPLE / "standards", tmp_path / "standards")  # the base spec and the policies ...
    shutil.copy(EXAMPLE / "tfspec.yaml", tmp_path / "tfspec.yaml")   # ... named by the project file
    (tmp_path / ".git").mkdir()                                       # the project-file search stops here
    fresh = build_folder(tmp_path / "specs", tmp_path / "rendered", use_cache=False)
    assert fresh.exit_code == 0
    committed, expected = tree(EXAMPLE / "rendered"), tree(tmp_path / "rendered")
    assert committed == expected, f"examples/gitops/rendered is stale; regenerate it with `{REGENERATE}`"


def test_check_command_of_the_ci_recipe_passes(tmp_path: Path) -> None:
    copy = tmp_path / "gitops"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns(CACHE_FILE, ".*.tmp"))
    workflow = yaml.safe_load((copy / ".github" / "workflows" / "tfspec.yaml").read_text())
    commands = [step["run"] for step in workflow["jobs"]["rendered-is-current"]["steps"] if "run" in step]
    check = next(c for c in commands if c.startswith("tfspec build"))
    assert check == "tfspec build specs/ --out rendered/ --prune --check"
    argv = [sys.executable, "-m", "tfspec", *check.split()[1:]]
    result = subprocess.run(argv, cwd=copy, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    # a spec edited without re-rendering fails the same command with a diff
    spec = copy / "specs" / "digits-lite.yaml"
    spec.write_text(spec.read_text().replace("epochs: 30", "epochs: 31"))
    stale = subprocess.run(argv, cwd=copy, capture_output=True, text=True, timeout=120)
    assert stale.returncode == 1 and "--- a/plan.json" in stale.stdout
    assert re.search(r'^\+ +"epochs": 31,$', stale.stdout, re.MULTILINE)


def test_pre_commit_files_are_valid() -> None:
    manifest = subprocess.run([*PRE_COMMIT, "validate-manifest", str(REPO / ".pre-commit-hooks.yaml")],
                              capture_output=True, text=True, timeout=120)
    assert manifest.returncode == 0, manifest.stdout + manifest.stderr
    config = subprocess.run([*PRE_COMMIT, "validate-config", str(EXAMPLE / ".pre-commit-config.yaml")],
                            capture_output=True, text=True, timeout=120)
    assert config.returncode == 0, config.stdout + config.stderr
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["tfspec-build-check"]
    assert hooks[0]["entry"] == "tfspec build --check" and hooks[0]["pass_filenames"] is False


def test_argocd_applicationset_matches_the_rendered_kustomizations() -> None:
    """The generator's glob finds exactly the serving kustomizations the plans say were rendered."""
    appset = yaml.safe_load((EXAMPLE / "argocd" / "serving-applicationset.yaml").read_text())
    project = yaml.safe_load((EXAMPLE / "argocd" / "project.yaml").read_text())
    assert appset["kind"] == "ApplicationSet" and project["kind"] == "AppProject"
    assert appset["spec"]["template"]["spec"]["project"] == project["metadata"]["name"]
    (pattern,) = [d["path"] for d in appset["spec"]["generators"][0]["git"]["directories"]]
    matched = sorted(Path(p).relative_to(EXAMPLE).as_posix() for p in glob.glob(str(EXAMPLE / pattern)))
    rendered_kustomizations = []
    for plan_path in sorted((EXAMPLE / "rendered").glob("*/plan.json")):
        if plan_path.parent.name.startswith("."):  # pathlib's * matches hidden folders (a killed build's staging)
            continue
        plan = json.loads(plan_path.read_text())
        for step in plan["steps"]:
            if step["id"] == "serving.render":
                rendered_kustomizations += [f"rendered/{plan_path.parent.name}/{Path(f).parent.as_posix()}"
                                            for f in step["params"]["files"] if f.endswith("kubernetes/kustomization.yaml")]
    assert matched == sorted(rendered_kustomizations)
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent) + ":/work/venv-probe/bin")
    for folder in matched:
        assert kubectl, "kubectl is needed to build the rendered kustomizations"
        built = subprocess.run([kubectl, "kustomize", str(EXAMPLE / folder)], capture_output=True, text=True, timeout=120)
        assert built.returncode == 0, built.stderr


def test_specs_share_the_base_and_pass_the_policies() -> None:
    """The project file gives every spec the base and the policies; the rendered output above is their merge."""
    base = EXAMPLE / "standards" / "base.yaml"
    policies = EXAMPLE / "standards" / "policies.yaml"
    warnings = []
    for spec in discover_specs(EXAMPLE / "specs"):
        assert "sklearn_digits" not in spec.read_text()  # the data section lives in the base only
        result = compile_spec(spec)
        assert result.ok, "\n".join(d.format() for d in result.diagnostics)
        assert set(result.resolved.sources) == {str(EXAMPLE / "tfspec.yaml"), str(base), str(policies)}
        assert result.resolved.spec.data.source.kind == "sklearn_digits"
        warnings += [(spec.name, w.path, w.message.split(":")[0]) for w in result.warnings]
    assert sorted(warnings) == [
        ("digits-lite.yaml", "targets[1].kubernetes", "policy serving-autoscales (warning)"),
        ("digits-lite.yaml", "targets[1].kubernetes", "policy serving-has-pdb (warning)"),
        ("digits.yaml", "<root>", "in environment 'prod'"),
    ]
