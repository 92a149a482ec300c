"""`tfspec fleet`: one page (and JSON) of every spec below a folder, checked in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfspec.io.batch import CACHE_FILE
from tfspec.io.fleet import collect_fleet
from tfspec.io.fleet_html import render_fleet_html
from tfspec_testing import ROOT, tfspec_command

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from chromium_page import open_page  # noqa: E402  (the project's headless-Chromium helper)

EXAMPLE = ROOT / "examples" / "gitops"


@pytest.fixture
def gitops(tmp_path: Path) -> Path:
    """A copy of examples/gitops with one spec edited (stale output), a run report for another, a broken spec."""
    copy = tmp_path / "gitops"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns(CACHE_FILE))
    (copy / ".git").mkdir()
    lite = copy / "specs" / "digits-lite.yaml"
    lite.write_text(lite.read_text().replace("epochs: 30", "epochs: 31"))
    plan = json.loads((copy / "rendered" / "digits" / "plan.json").read_text())
    report = {"spec": {"name": "digits", "version": 3, "sha256": plan["spec"]["sha256"], "environment": None},
              "steps": [], "passed": False,
              "targets": {"android": {"gates": [
                  {"name": "max_accuracy_drop", "limit": 0.01, "value": 0.004, "passed": True},
                  {"name": "max_size_kb", "limit": 64, "value": 71.5, "passed": False}]}}}
    (copy / "dist" / "digits").mkdir(parents=True)
    (copy / "dist" / "digits" / "report.json").write_text(json.dumps(report))
    (copy / "specs" / "broken.yaml").write_text(
        "api_version: tfspec/v1\nname: broken\nversion: 1\nmodel:\n  layers: [{type: dense, units: 10}]\n"
        "targets:\n  - {kind: tf_serving, name: serving, gpus: 3, \"<script>alert(1)</script>\": 1}\n")
    return copy


def test_fleet_json_lists_models_targets_gates_staleness_and_warnings(gitops: Path) -> None:
    result = subprocess.run([*tfspec_command(), "fleet", "specs", "--out", "rendered", "--json"], cwd=gitops,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    specs = {Path(s["path"]).name: s for s in json.loads(result.stdout)["specs"]}
    assert {n: (s["build"], s["run"]) for n, s in specs.items()} == {
        "broken.yaml": ("invalid", "-"), "digits-gpu.yaml": ("current", "none"),
        "digits-lite.yaml": ("stale", "none"), "digits.yaml": ("current", "current")}
    digits = specs["digits.yaml"]
    assert digits["name"] == "digits" and digits["version"] == 3 and digits["run_passed"] is False
    android, serving, cluster = digits["targets"]
    assert android["gates"] == [
        {"name": "max_accuracy_drop", "limit": 0.01, "value": 0.004, "passed": True},
        {"name": "max_size_kb", "limit": 64.0, "value": 71.5, "passed": False}]
    deployment = (gitops / "rendered" / "digits" / "serving" / "kubernetes" / "deployment.yaml").read_text()
    # the example's base names the registry CI pushes to
    assert serving["image"].startswith("registry.example.com/ml/digits-serving:3-")
    assert f'image: "{serving["image"]}"' in deployment
    assert cluster["image"].startswith("registry.example.com/ml/digits-cluster:3-") and cluster["gpus"] == "2/worker × 4"
    assert [w.split(": ", 2)[1] for w in specs["digits-lite.yaml"]["warnings"]] == ["targets[1].kubernetes"] * 2
    assert any("unknown key '<script>alert(1)</script>'" in p for p in specs["broken.yaml"]["problems"])
    assert sorted(digits["sources"]) == ["standards/base.yaml", "standards/policies.yaml", "tfspec.yaml"]


def test_fleet_page_opens_in_chromium_without_errors(gitops: Path, tmp_path: Path) -> None:
    page = gitops / "fleet.html"
    result = subprocess.run([*tfspec_command(), "fleet", "specs", "--out", "rendered", "--html", str(page)],
                            cwd=gitops, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "4 specs, 1 invalid, 1 stale, 0 not built, 2 never run, 3 policy warnings" in result.stdout
    html = page.read_text()
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # spec text is escaped
    seen = open_page(page)
    assert seen.errors == [] and seen.title == "specs · tfspec fleet"
    # self-contained: the page itself is the only request (the helper keeps the first 60 characters of a URL)
    assert len(seen.requests) == 1 and page.resolve().as_uri().startswith(seen.requests[0]) and seen.resources == []
    assert seen.screenshot.startswith(b"\x89PNG")
    (tmp_path / "fleet.png").write_bytes(seen.screenshot)
    for text in ("digits-serving:3", "max_size_kb 64 → 71.5", "stale", "policy serving-autoscales (warning)",
                 "2/worker × 4", "standards/base.yaml"):
        assert text in html


def test_an_empty_folder_gives_an_empty_page(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    fleet = collect_fleet(tmp_path / "specs", tmp_path / "build", tmp_path / "dist")
    assert fleet.rows == () and "No specs below" in render_fleet_html(fleet)


def _tutorial_layout(tmp_path: Path) -> Path:
    """Two models, each in its own folder, built and one of them run from inside it (the tutorial's
    `cd digits && tfspec build deploy.yaml` then `tfspec run`): outputs land beside each spec."""
    specs = tmp_path / "specs"
    for name in ("alpha", "beta"):
        folder = specs / name
        folder.mkdir(parents=True)
        text = (ROOT / "examples" / "digits" / "deploy.yaml").read_text().replace("name: digits ", f"name: {name} ", 1)
        (folder / "deploy.yaml").write_text(text)
        built = subprocess.run([*tfspec_command(), "build", "deploy.yaml"], cwd=folder, capture_output=True, text=True,
                               timeout=120)
        assert built.returncode == 0, built.stderr
    plan = json.loads((specs / "alpha" / "build" / "alpha" / "plan.json").read_text())
    report = {"spec": {"name": "alpha", "version": 3, "sha256": plan["spec"]["sha256"], "environment": None},
              "steps": [], "passed": True, "targets": {}}
    (specs / "alpha" / "dist" / "alpha").mkdir(parents=True)  # where `tfspec run deploy.yaml` writes from there
    (specs / "alpha" / "dist" / "alpha" / "report.json").write_text(json.dumps(report))
    return specs


def test_fleet_finds_outputs_where_the_commands_wrote_them(tmp_path: Path) -> None:
    specs = _tutorial_layout(tmp_path)
    result = subprocess.run([*tfspec_command(), "fleet", "specs", "--json"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {s["name"]: s for s in json.loads(result.stdout)["specs"]}
    assert {n: (r["build"], r["run"]) for n, r in rows.items()} == {"alpha": ("current", "current"),
                                                                     "beta": ("current", "none")}
    assert rows["alpha"]["build_dir"] == str(Path("specs") / "alpha" / "build" / "alpha")
    assert rows["alpha"]["dist_dir"] == str(Path("specs") / "alpha" / "dist" / "alpha")
    # an edit beside a built output makes it stale there, not "not built"
    spec = specs / "beta" / "deploy.yaml"
    spec.write_text(spec.read_text().replace("epochs: 40", "epochs: 41"))
    rows = {r.name: r for r in collect_fleet(specs).rows}
    assert rows["beta"].build == "stale"


def test_unknown_states_never_show_green(tmp_path: Path) -> None:
    specs = _tutorial_layout(tmp_path)
    shutil.rmtree(specs / "beta" / "build")
    fleet = collect_fleet(specs)
    assert [(r.name, r.build, r.run) for r in fleet.rows] == [("alpha", "current", "current"), ("beta", "not built", "none")]
    html = render_fleet_html(fleet)
    assert 'class="badge neutral" id="verdict-stale">0 stale builds, 1 not built<' in html
    assert 'class="badge neutral" id="verdict-runs">0 stale runs, 1 never run<' in html
    both = _tutorial_layout(tmp_path / "again")
    (both / "beta" / "dist" / "beta").mkdir(parents=True)
    shutil.copyfile(both / "alpha" / "dist" / "alpha" / "report.json", both / "beta" / "dist" / "beta" / "report.json")
    html = render_fleet_html(collect_fleet(both))  # beta's report names alpha's spec: a stale run is a failure
    assert 'class="badge pass" id="verdict-stale">0 stale builds<' in html
    assert 'class="badge fail" id="verdict-runs">1 stale run<' in html


def test_fleet_lists_every_target_kind_with_its_pods(tmp_path: Path) -> None:
    """A kserve target made `tfspec fleet` crash (it read a tflite field); an autoscaled serving target showed
    its unused replicas field instead of the autoscaler's range."""
    import yaml

    tree = yaml.safe_load((ROOT / "examples" / "digits" / "deploy.yaml").read_text())
    tree.pop("environments")
    tree["registry"] = "registry.example.com/ml"
    serving = next(t for t in tree["targets"] if t["kind"] == "tf_serving")
    serving["kubernetes"] = {"autoscale": {"min": 2, "max": 10}}
    tree["targets"].append({"kind": "kserve", "name": "kserve", "model_store": {"base_path": "s3://models/digits"},
                            "autoscale": {"min": 1, "max": 4}})
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "deploy.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    result = subprocess.run([*tfspec_command(), "fleet", "specs", "--json"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (spec,) = json.loads(result.stdout)["specs"]
    rows = {t["name"]: (t["kind"], t["image"], t["gpus"]) for t in spec["targets"]}
    assert rows["android"] == ("tflite", "digits.tflite", "-")
    assert rows["serving"][0] == "tf_serving" and rows["serving"][1].startswith("registry.example.com/ml/digits-serving:3-")
    assert rows["serving"][2] == "0/replica × 2–10"
    assert rows["cluster"] == ("gpu_cluster", rows["cluster"][1], "2/worker × 4")
    assert rows["kserve"] == ("kserve", "s3://models/digits/3/", "0/replica × 1–4")
