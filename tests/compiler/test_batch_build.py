"""Folder builds (tfspec/io/batch.py): discovery, parallel == sequential, the input-hash cache, names."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tfspec.compiler.pipeline import compile_spec
from tfspec.io.batch import CACHE_FILE, build_folder, discover_specs
from tfspec.io.batch import build_producer
from tfspec.base.atomic import write_tree

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "deploy.yaml"


def spec_text(name: str, replicas: int = 2) -> str:
    text = DIGITS.read_text("utf-8")
    assert "name: digits " in text and "replicas: 2," in text
    return text.replace("name: digits ", f"name: {name} ", 1).replace("replicas: 2,", f"replicas: {replicas},", 1)


def write_specs(folder: Path, names: list[str], replicas: int = 2) -> dict[str, Path]:
    paths = {}
    for index, name in enumerate(names):
        path = folder / ("nested" if index % 2 else "") / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(spec_text(name, replicas), "utf-8")
        paths[name] = path
    return paths


def spec_sha(plan: Path) -> str:
    return json.loads(plan.read_text("utf-8"))["spec"]["sha256"]


def text_sha(path: Path) -> str:
    """The spec content sha256 a build of ``path`` records in plan.json (comments and layout excluded)."""
    result = compile_spec(path)
    assert result.plan is not None
    return result.plan.spec_sha256


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_discovery_finds_specs_only(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_specs(specs, ["a", "b"])
    (specs / "values.yaml").write_text("api_version: v1\nkind: ConfigMap\n")          # other YAML: ignored
    (specs / "notes.yml").write_text("# api_version: tfspec/v1 in a comment\n")         # not top level
    (specs / ".hidden").mkdir()
    (specs / ".hidden" / "c.yaml").write_text(spec_text("c"))                            # hidden folder
    (specs / "build" / "x").mkdir(parents=True)
    (specs / "build" / "x" / "d.yaml").write_text(spec_text("d"))                        # the output root
    (specs / "e.yml").write_text(spec_text("e"))
    build_folder(specs / "nested", specs / "rendered")                                  # an output folder ...
    assert (specs / "rendered" / "b" / "cluster" / "spec" / "b.yaml").is_file()            # ... holding a spec copy
    found = [p.relative_to(specs).as_posix() for p in discover_specs(specs, exclude=[specs / "build"])]
    assert found == ["a.yaml", "e.yml", "nested/b.yaml"]


def test_parallel_folder_build_equals_sequential_single_builds(tmp_path: Path) -> None:
    names = [f"model-{i}" for i in range(8)]
    paths = write_specs(tmp_path / "specs", names)
    processes = set()
    for _ in range(3):  # on a loaded machine one worker can take every spec before the other starts
        result = build_folder(tmp_path / "specs", tmp_path / "parallel", jobs=2, use_cache=False)
        assert result.exit_code == 0
        assert result.count("built") == 8 and result.compiled == 8
        processes.add(result.processes)
        if result.processes == 2:
            break
    assert 2 in processes, "the specs were never compiled by two worker processes"
    for name in names:
        compiled = compile_spec(paths[name])
        assert compiled.ok
        write_tree(tmp_path / "sequential" / name, compiled.placed(tmp_path / "sequential" / name).files,
                   build_producer(compiled.resolved.spec.name, None))
    parallel, sequential = tree(tmp_path / "parallel"), tree(tmp_path / "sequential")
    assert set(sequential) == {f"{n}/{f}" for n in names for f in ("plan.json", "manifest.json")} | set(sequential)
    parallel.pop(CACHE_FILE, None)
    assert parallel == sequential


def test_cache_skips_unchanged_specs(tmp_path: Path) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    paths = write_specs(specs, ["a", "b", "c", "d"])
    first = build_folder(specs, out, jobs=2)
    assert first.count("built") == 4
    before = {n: (os.stat(out / n).st_ino, os.stat(out / n / "plan.json").st_mtime_ns) for n in "abcd"}

    second = build_folder(specs, out, jobs=2)
    assert second.compiled == 0 and second.count("cached") == 4
    assert {n: (os.stat(out / n).st_ino, os.stat(out / n / "plan.json").st_mtime_ns) for n in "abcd"} == before

    paths["c"].write_text(spec_text("c", replicas=3), "utf-8")
    third = build_folder(specs, out, jobs=2)
    assert third.compiled == 1
    assert {o.name: o.status for o in third.outcomes} == {"a": "cached", "b": "cached", "c": "built", "d": "cached"}
    after = {n: (os.stat(out / n).st_ino, os.stat(out / n / "plan.json").st_mtime_ns) for n in "abcd"}
    assert after["c"] != before["c"]
    assert {n: after[n] for n in "abd"} == {n: before[n] for n in "abd"}
    assert spec_sha(out / "c" / "plan.json") == text_sha(paths["c"])


def test_cache_notices_tampered_output_and_no_cache(tmp_path: Path) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_specs(specs, ["a", "b"])
    build_folder(specs, out, jobs=1)
    (out / "a" / "plan.json").write_text("{}\n")
    rebuilt = build_folder(specs, out, jobs=1)
    assert {o.name: o.status for o in rebuilt.outcomes} == {"a": "built", "b": "cached"}
    assert (out / "a" / "plan.json").read_text() != "{}\n"
    forced = build_folder(specs, out, jobs=1, use_cache=False)
    assert forced.count("built") == 2


def test_cache_key_includes_referenced_environment_variables(tmp_path: Path) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    specs.mkdir()
    (specs / "v.yaml").write_text(spec_text("v").replace("replicas: 2,", "replicas: \"${REPLICAS:-2}\","), "utf-8")
    assert build_folder(specs, out, environ={"REPLICAS": "2"}).count("built") == 1
    assert build_folder(specs, out, environ={"REPLICAS": "2", "UNRELATED": "x"}).count("cached") == 1
    assert build_folder(specs, out, environ={"REPLICAS": "5"}).count("built") == 1
    broken = build_folder(specs, out, environ={"REPLICAS": "-5"})
    assert broken.exit_code == 2 and "kubernetes.replicas" in broken.diagnostics[0].format()


def test_cache_follows_a_distillation_teacher_spec(tmp_path: Path) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    specs.mkdir()
    teacher = specs / "teacher.yaml"
    teacher.write_text(spec_text("teacher"), "utf-8")
    student = spec_text("student")
    start, end = student.index("compression:"), student.index("targets:")
    student = (student[:start] + "compression:\n  - {kind: distill, teacher: {kind: spec, path: teacher.yaml}, "
               "student: [{type: dense, units: 32, activation: relu}, {type: dense, units: 10, activation: softmax}]}\n"
               + student[end:])
    (specs / "student.yaml").write_text(student, "utf-8")
    first = build_folder(specs, out)
    assert first.count("built") == 2
    deps = dict({o.name: o for o in first.outcomes}["student"].deps)
    assert list(deps) == [str(teacher.resolve())]
    teacher.write_text(spec_text("teacher", replicas=4), "utf-8")
    second = build_folder(specs, out)
    assert {o.name: o.status for o in second.outcomes} == {"teacher": "built", "student": "built"}


def test_duplicate_names_are_errors_naming_both_files(tmp_path: Path) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_specs(specs, ["a", "b"])
    (specs / "copy.yaml").write_text(spec_text("a"), "utf-8")
    result = build_folder(specs, out)
    assert result.exit_code == 2
    problems = {d.file: d.format() for d in result.diagnostics}
    assert set(problems) == {str(specs / "a.yaml"), str(specs / "copy.yaml")}
    assert str(specs / "copy.yaml") in problems[str(specs / "a.yaml")]
    assert str(specs / "a.yaml") in problems[str(specs / "copy.yaml")]
    assert not (out / "a").exists() and (out / "b" / "plan.json").is_file()


def test_invalid_specs_are_all_reported_and_valid_ones_built(tmp_path: Path) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_specs(specs, ["good"])
    (specs / "bad1.yaml").write_text(spec_text("bad1").replace("units: 128", "units: -1"), "utf-8")
    (specs / "bad2.yaml").write_text(spec_text("bad2").replace("epochs: 40", "epochs: lots"), "utf-8")
    result = build_folder(specs, out)
    assert result.exit_code == 2
    assert {o.path.rsplit("/", 1)[-1]: o.status for o in result.outcomes} == {
        "bad1.yaml": "invalid", "bad2.yaml": "invalid", "good.yaml": "built"}
    messages = [d.format() for d in result.diagnostics]
    assert any("bad1.yaml:" in m and "model.layers[0].units" in m for m in messages)
    assert any("bad2.yaml:" in m and "training.epochs" in m for m in messages)


def test_check_reports_stale_outputs_without_writing(tmp_path: Path) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    paths = write_specs(specs, ["a", "b"])
    build_folder(specs, out)
    assert build_folder(specs, out, check=True).exit_code == 0
    before = tree(out)
    paths["b"].write_text(spec_text("b", replicas=7), "utf-8")
    check = build_folder(specs, out, check=True)
    assert check.exit_code == 1
    stale = [o for o in check.outcomes if o.status == "stale"]
    assert [o.name for o in stale] == ["b"]
    assert "--- a/plan.json" in stale[0].diff and f'+    "sha256": "{text_sha(paths["b"])}"' in stale[0].diff
    assert tree(out) == before


def test_check_of_an_up_to_date_folder_compiles_nothing(tmp_path: Path, monkeypatch) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_specs(specs, ["a", "b", "c"])
    build_folder(specs, out)
    import tfspec.io.batch as batch

    compiled: list[str] = []
    real_compile = batch._compile
    monkeypatch.setattr(batch, "_compile", lambda job: compiled.append(job[0]) or real_compile(job))
    check = build_folder(specs, out, check=True, jobs=1)
    assert check.exit_code == 0 and check.compiled == 0 and compiled == []
    assert [o.status for o in check.outcomes] == ["current"] * 3
    # --no-cache still compiles and compares every spec
    assert build_folder(specs, out, check=True, jobs=1, use_cache=False).compiled == 3 and len(compiled) == 3


@pytest.mark.parametrize("edit", ["same size and mtime", "extra file", "missing file"])
def test_check_catches_a_hand_edited_output_of_an_unchanged_spec(tmp_path: Path, edit: str) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_specs(specs, ["a", "b"])
    build_folder(specs, out)
    deployment = out / "b" / "serving" / "kubernetes" / "deployment.yaml"
    if edit == "same size and mtime":  # the cache's size/mtime check alone would call it unchanged
        info = deployment.stat()
        text = deployment.read_text("utf-8")
        deployment.write_text(text.replace("image:", "imagE:", 1), "utf-8")
        os.utime(deployment, ns=(info.st_atime_ns, info.st_mtime_ns))
        assert deployment.stat().st_size == info.st_size and deployment.read_text("utf-8") != text
    elif edit == "extra file":
        (out / "b" / "serving" / "notes.txt").write_text("hand-made\n", "utf-8")
    else:
        deployment.unlink()
    before = tree(out)
    check = build_folder(specs, out, check=True, jobs=1)
    assert check.exit_code == 1 and check.compiled == 1
    assert [(o.name, o.status) for o in check.outcomes] == [("a", "current"), ("b", "stale")]
    assert "serving/kubernetes/deployment.yaml" in check.outcomes[1].diff or "notes.txt" in check.outcomes[1].diff
    assert tree(out) == before


def test_prune_removes_outputs_of_deleted_specs(tmp_path: Path) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    paths = write_specs(specs, ["a", "b"])
    build_folder(specs, out)
    paths["b"].unlink()
    (out / "notes").mkdir()  # not tfspec output: never touched
    assert build_folder(specs, out, check=True).exit_code == 0
    check = build_folder(specs, out, check=True, prune=True)
    assert check.exit_code == 1 and check.orphans == ("b",)
    pruned = build_folder(specs, out, prune=True)
    assert pruned.exit_code == 0 and pruned.orphans == ("b",)
    assert not (out / "b").exists() and (out / "a").is_dir() and (out / "notes").is_dir()
    assert json.loads((out / CACHE_FILE).read_text())["entries"].keys() == {str(paths["a"].resolve())}


@pytest.mark.parametrize("env", ["prod"])
def test_environment_overlay_goes_to_name_env(tmp_path: Path, env: str) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_specs(specs, ["a"])
    result = build_folder(specs, out, env)
    assert result.exit_code == 0
    assert json.loads((out / "a-prod" / "plan.json").read_text())["spec"]["environment"] == "prod"


def test_the_build_cache_key_covers_the_plan_package(tmp_path: Path, monkeypatch) -> None:
    """A folder build's cache is keyed by the compiler's sources; the plan package shapes plan.json too."""
    import importlib.resources

    from tfspec.io import batch

    copies = {}
    for package in ("tfspec.spec", "tfspec.plan", "tfspec.compiler", "tfspec.templates"):
        copies[package] = tmp_path / package
        shutil.copytree(Path(str(importlib.resources.files(package))), copies[package],
                        ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(batch, "_package_folder", lambda package: copies[package])
    before = batch.compiler_fingerprint.__wrapped__()
    params = copies["tfspec.plan"] / "params.py"
    params.write_text(params.read_text() + "\n# a new params field would change every plan.json\n")
    assert batch.compiler_fingerprint.__wrapped__() != before


def test_a_folder_build_resolves_each_protected_path_once(tmp_path: Path, monkeypatch) -> None:
    """Every output folder is checked against every spec (none may sit inside an output): with the protected
    paths resolved once per build the ``realpath`` calls grow with the number of specs, not with its square
    (500 specs took 252,002 calls, a third of a profiled in-process folder build)."""
    calls = {"n": 0}
    realpath = os.path.realpath

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return realpath(path, *args, **kwargs)

    def calls_for(count: int) -> int:
        root = tmp_path / f"n{count}"
        write_specs(root / "specs", [f"model-{i:02d}" for i in range(count)])
        monkeypatch.chdir(root)
        calls["n"] = 0
        with monkeypatch.context() as patch:
            patch.setattr(os.path, "realpath", counting)
            result = build_folder("specs", "out", jobs=1)
        assert result.count("built") == count, result
        return calls["n"]

    few, many = calls_for(3), calls_for(15)
    per_added_spec = (many - few) / 12
    assert per_added_spec <= 10, (few, many)  # quadratic: 2 checks x (15 + 3) paths each, ~40 per added spec


def test_placing_a_plan_changes_its_root_line_only(tmp_path: Path, monkeypatch) -> None:
    """``placed_files`` sets the root of a compiled plan without parsing it, and gives the same bytes as parsing
    and re-encoding it (the slow way, still taken for a plan not written by ``Plan.to_text``)."""
    import tfspec.compiler.naming as naming
    from tfspec.plan import PLAN_FILE

    spec = write_specs(tmp_path / "specs", ["a"])["a"]
    result = compile_spec(spec)
    assert result.ok, result.diagnostics
    out_dir = tmp_path / "out" / "a"
    plan = json.loads(result.files[PLAN_FILE])
    plan["root"] = naming.plan_root(spec, out_dir)
    expected = json.dumps(plan, indent=2, sort_keys=True) + "\n"

    def no_parsing(_text: str) -> None:
        raise AssertionError("the compiled plan was parsed again")

    with monkeypatch.context() as patch:
        patch.setattr(naming.json, "loads", no_parsing)
        placed = naming.placed_files(result.files, spec, out_dir)
    assert placed[PLAN_FILE] == expected and expected.startswith('{\n  "root": "../../specs",\n')
    assert {k: v for k, v in placed.items() if k != PLAN_FILE} == {k: v for k, v in result.files.items() if k != PLAN_FILE}
    reordered = json.dumps(json.loads(result.files[PLAN_FILE]), indent=1)  # not as to_text writes it: parsed
    assert json.loads(naming.placed_files({**result.files, PLAN_FILE: reordered}, spec, out_dir)[PLAN_FILE]) == plan


@pytest.mark.parametrize("jobs", [1, 2])
def test_outputs_staged_during_the_compile_and_not_kept_leave_nothing_behind(tmp_path: Path, jobs: int) -> None:
    """Outputs are written (staged) while other specs still compile; those of a duplicate name and of a
    refused folder are deleted, the rest swapped in, and no staging folder is left in the output root."""
    specs, out = tmp_path / "specs", tmp_path / "out"
    write_specs(specs, ["a", "b", "mine"])
    (specs / "copy.yaml").write_text(spec_text("a"), "utf-8")
    (out / "mine").mkdir(parents=True)
    (out / "mine" / "notes.txt").write_text("a user's file", "utf-8")  # not a tfspec output: refused
    result = build_folder(specs, out, jobs=jobs)
    assert {Path(o.path).name: o.status for o in result.outcomes} == {
        "a.yaml": "invalid", "copy.yaml": "invalid", "b.yaml": "built", "mine.yaml": "invalid"}
    assert sorted(p.name for p in out.iterdir()) == [CACHE_FILE, "b", "mine"]
    assert tree(out / "mine") == {"notes.txt": b"a user's file"}
    assert (out / "b" / "plan.json").is_file() and (out / "b" / "manifest.json").is_file()


def test_outputs_are_staged_while_later_specs_still_compile(tmp_path: Path, monkeypatch) -> None:
    """The first spec's output is on disk (staged) before the last spec is compiled: writing overlaps
    compiling instead of waiting for the whole folder."""
    import tfspec.io.batch as batch

    specs, out = tmp_path / "specs", tmp_path / "out"
    write_specs(specs, ["a", "b", "c"])
    staged_before: list[int] = []
    compile_one = batch._compile

    def compile_and_look(job):  # in process (jobs=1): count the staging folders already written
        if job[0].endswith("c.yaml"):
            for _ in range(200):  # the writer thread needs a moment
                if out.is_dir() and any(p.name.startswith(".a.") and (p / "manifest.json").is_file() for p in out.iterdir()):
                    break
                time.sleep(0.01)
            staged_before.append(sum(1 for p in out.iterdir() if p.name.startswith(".a.")) if out.is_dir() else 0)
        return compile_one(job)

    monkeypatch.setattr(batch, "_compile", compile_and_look)
    result = build_folder(specs, out, jobs=1)
    assert result.count("built") == 3 and staged_before == [1]
    assert sorted(p.name for p in out.iterdir()) == [CACHE_FILE, "a", "b", "c"]
