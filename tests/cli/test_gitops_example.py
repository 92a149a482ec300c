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


def _ci_steps() -> list[dict]:
    workflow = yaml.safe_load((EXAMPLE / ".github" / "workflows" / "tfspec.yaml").read_text())
    return workflow["jobs"]["rendered-is-current"]["steps"]


def test_ci_installs_tfspec_from_its_repository_at_the_hooks_tag() -> None:
    """tfspec is on no package index: CI installs it from its repository, at the tag the pre-commit hook
    pins, so both render with one version."""
    from packaging.requirements import Requirement

    (install,) = [s["run"] for s in _ci_steps() if s.get("run", "").startswith("pip install")]
    requirement = Requirement(install.split(" ", 2)[2].strip('"'))
    (hook,) = yaml.safe_load((EXAMPLE / ".pre-commit-config.yaml").read_text())["repos"]
    assert requirement.name == "tfspec" and not requirement.specifier
    assert requirement.url == f"git+{hook['repo']}@{hook['rev']}"


def test_ci_builds_every_rendered_kustomization(tmp_path: Path) -> None:
    """The CI step's own script, run on the committed output: every folder with a kustomization.yaml is
    built, the workflow folders included."""
    (script,) = [s["run"] for s in _ci_steps() if s.get("name") == "Every kustomization builds"]
    copy = tmp_path / "gitops"
    shutil.copytree(EXAMPLE / "rendered", copy / "rendered", ignore=shutil.ignore_patterns(".*"))
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    result = subprocess.run(["bash", "-e", "-c", script], cwd=copy, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    built = sorted(line.removeprefix("kubectl kustomize ") for line in result.stdout.splitlines())
    expected = sorted(p.parent.relative_to(copy).as_posix() for p in (copy / "rendered").rglob("kustomization.yaml"))
    assert built == expected and any(folder.endswith("/workflow") for folder in built)


def _documents(folder: Path) -> list[dict]:
    """The Kubernetes objects of a kustomize base (not its kustomization or transformer configuration)."""
    return [d for p in sorted(folder.glob("*.yaml")) if p.name != "kustomization.yaml"
            for d in yaml.safe_load_all(p.read_text()) if d and "kind" in d]


def test_a_sync_keeps_the_config_map_a_rollout_undo_needs(tmp_path: Path) -> None:
    """A changed serving config is a new hash-named ConfigMap. When Argo CD syncs it (automated, with
    pruning: argocd/serving-applicationset.yaml), the previous ConfigMap must stay, unflagged: `kubectl
    rollout undo` brings back the previous ReplicaSet, whose pods mount it (tests/oracles/argocd.py)."""
    from oracles import argocd as argocd_oracle

    appset = yaml.safe_load((EXAMPLE / "argocd" / "serving-applicationset.yaml").read_text())
    assert appset["spec"]["template"]["spec"]["syncPolicy"]["automated"]["prune"] is True
    live = _documents(EXAMPLE / "rendered" / "digits" / "serving" / "kubernetes")
    shutil.copytree(EXAMPLE, tmp_path / "gitops", ignore=shutil.ignore_patterns(CACHE_FILE, ".*.tmp", "rendered"))
    spec = tmp_path / "gitops" / "specs" / "digits.yaml"
    spec.write_text(spec.read_text().replace("batch_timeout_micros: 2000", "batch_timeout_micros: 1000"))
    result = compile_spec(spec)
    assert result.ok, [d.format() for d in result.diagnostics]
    desired = [d for path, text in result.files.items() if path.startswith("serving/kubernetes/")
               and not path.endswith("kustomization.yaml") for d in yaml.safe_load_all(text) if d]
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    gone = {key(d) for d in live} - {key(d) for d in desired}
    (previous,) = [d for d in live if key(d) in gone]  # only the ConfigMap has a new name
    assert previous["kind"] == "ConfigMap"
    assert not argocd_oracle.pruned(previous) and not argocd_oracle.out_of_sync_when_extraneous(previous)
    (deployment,) = [d for d in live if d["kind"] == "Deployment"]  # the previous revision's pod template
    mounted = [v["configMap"]["name"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    after_sync = {key(d) for d in desired} | {key(d) for d in live if key(d) in gone and not argocd_oracle.pruned(d)}
    assert [("ConfigMap", name) in after_sync for name in mounted] == [True]


def test_the_workflow_applicationset_covers_every_workflow_folder_and_its_token() -> None:
    appset = yaml.safe_load((EXAMPLE / "argocd" / "workflow-applicationset.yaml").read_text())
    project = yaml.safe_load((EXAMPLE / "argocd" / "pipelines-project.yaml").read_text())
    template = appset["spec"]["template"]["spec"]
    assert template["project"] == project["metadata"]["name"]
    assert template["destination"]["namespace"] in [d["namespace"] for d in project["spec"]["destinations"]]
    (pattern,) = [d["path"] for d in appset["spec"]["generators"][0]["git"]["directories"]]
    folders = sorted(Path(p) for p in glob.glob(str(EXAMPLE / pattern)))
    assert [f.parent.name for f in folders] == ["digits"]
    from oracles import argocd as argocd_oracle

    for folder in folders:
        model = folder.relative_to(EXAMPLE).parts[1]  # {{ index .path.segments 1 }}
        ignore = [{k: (v.replace("{{ index .path.segments 1 }}", model) if isinstance(v, str) else v)
                   for k, v in entry.items()} for entry in template["ignoreDifferences"]]
        objects = _documents(folder)
        assert {d["metadata"]["namespace"] for d in objects} == {template["destination"]["namespace"]}
        (token,) = [d for d in objects if d.get("type") == "kubernetes.io/service-account-token"]
        assert argocd_oracle.ignored(ignore, token, "/data")
        assert not [d for d in objects if d is not token and argocd_oracle.ignored(ignore, d, "/data")]


def test_ci_posts_the_pull_request_summary(tmp_path: Path) -> None:
    """On a pull request, GitHub checks out its test merge commit (GITHUB_SHA "is the last merge commit of
    the pull request merge branch": docs.github.com, Events that trigger workflows, pull_request), whose
    first parent is the base branch. The step's own script runs here on such a merge, its summary appended
    to the file $GITHUB_STEP_SUMMARY names, before the rendered-output check (posted even when that fails)."""
    steps = _ci_steps()
    assert steps[0]["uses"].startswith("actions/checkout@") and steps[0]["with"]["fetch-depth"] == 2
    (index,) = [i for i, s in enumerate(steps) if s.get("run", "").startswith("tfspec diff")]
    step = steps[index]
    assert step["if"] == "github.event_name == 'pull_request'"
    assert step["run"] == 'tfspec diff specs/ --base HEAD^1 --head HEAD >> "$GITHUB_STEP_SUMMARY"'
    assert index < next(i for i, s in enumerate(steps) if s.get("name") == "Rendered output is current")
    copy = tmp_path / "gitops"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns(CACHE_FILE, ".*.tmp", ".tfspec"))
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}

    def git(*args: str) -> None:
        done = subprocess.run(["git", *args], cwd=copy, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", "main")
    git("checkout", "-q", "-b", "pull-request")
    spec = copy / "specs" / "digits-lite.yaml"
    spec.write_text(spec.read_text().replace("epochs: 30", "epochs: 31"))
    git("commit", "-q", "-a", "-m", "digits-lite: 31 epochs")
    git("checkout", "-q", "main")
    git("merge", "-q", "--no-ff", "-m", "Merge pull request", "pull-request")  # what refs/pull/N/merge holds
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier steps' summary\n")
    result = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=copy, env={**env, "GITHUB_STEP_SUMMARY": str(summary)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    text = summary.read_text()
    assert text.startswith("earlier steps' summary\n## tfspec diff: `specs` from `HEAD^1`")
    assert "3 specs: 1 changed, 2 unchanged." in text
    assert "| `training.epochs` | `30` | `31` |" in text
