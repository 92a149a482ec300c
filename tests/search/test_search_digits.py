"""``tfspec search`` on digits for real: a small study, a killed and restarted search, two processes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import optuna
import pytest

from search_testing import search_env, start_search, write_spec
from tfspec_testing import tfspec_command

pytestmark = pytest.mark.slow


def _search(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tfspec_command(), "search", spec.name, *args], cwd=spec.parent, env=search_env(),
                          capture_output=True, text=True, timeout=900)


def _study(spec: Path) -> optuna.Study:
    storage = f"sqlite:///{spec.parent / '.tfspec' / 'search.db'}"
    names = optuna.get_all_study_names(storage)
    assert len(names) == 1, names
    return optuna.load_study(study_name=names[0], storage=storage)


def _cached_steps(spec: Path) -> list[str]:
    markers = (spec.parent / ".tfspec" / "cache").glob("*/.complete.json")
    return sorted(json.loads(m.read_text(encoding="utf-8"))["step"] for m in markers)


def test_a_small_search_finds_a_smaller_model_within_the_gates(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, trials=8)
    proc = _search(spec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^trial \d+ complete \| \d/8 done \| best #\d+ size_kb [0-9.]+$", proc.stdout, re.M), proc.stdout
    result = json.loads((tmp_path / "dist" / "digits-search" / "search.json").read_text(encoding="utf-8"))
    trials = {t["number"]: t for t in result["trials"]}
    assert len(trials) == 8
    own = trials[0]
    assert own["spec_own"] and own["params"]["model.layers[0].units"] == 64 and own["state"] == "complete"
    chosen = trials[result["chosen"]]
    assert chosen["passed"] and chosen["metrics"]["accuracy"] >= 0.85
    assert chosen["metrics"]["size_kb"] < own["metrics"]["size_kb"]
    assert _cached_steps(spec).count("data") == 1  # every trial after the first took the data step from the cache
    # The overlay file is the chosen trial: building and running with it reuses that trial's cached steps.
    overlay = spec.with_name("deploy.searched.env.yaml")
    assert f"units: {chosen['params']['model.layers[0].units']}" in overlay.read_text(encoding="utf-8")
    run = subprocess.run([*tfspec_command(), "run", spec.name, "-e", "searched", "--json"], cwd=tmp_path,
                         env=search_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    outcome = json.loads(run.stdout)
    assert outcome["ran"] == [] and outcome["report"]["passed"]
    page = (tmp_path / "dist" / "digits-search" / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 2 and 'class="gate"' in page and "http" not in page.replace(
        "http://www.w3.org/2000/svg", "")


def test_a_killed_search_continues_the_same_study(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, trials=3, epochs=3, sampler="random")
    first = start_search(spec)
    assert first.stdout is not None
    lines = []
    for line in first.stdout:
        lines.append(line)
        if line.startswith("trial 0 complete"):
            first.kill()  # SIGKILL while trial 1 runs
            break
    first.wait(timeout=60)
    assert first.returncode == -9, "".join(lines)
    assert [t.state for t in _study(spec).get_trials()][:1] == [optuna.trial.TrialState.COMPLETE]
    second = _search(spec)
    assert second.returncode == 0, second.stdout + second.stderr
    assert re.search(r"^study digits-[0-9a-f]{12} in sqlite:///.*: 1 of 3 trials done$", second.stdout, re.M), second.stdout
    trials = _study(spec).get_trials()
    complete = [t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete[0] == 0 and len(complete) >= 3  # trial 0 of the killed process kept; the rest added
    assert not re.search(r"^trial 0 ", second.stdout, re.M)


def test_two_processes_on_one_study_complete_distinct_trials(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, trials=5, epochs=3, sampler="random")
    first = start_search(spec)
    assert first.stdout is not None
    seen = []
    for line in first.stdout:  # the second starts once the data step is in the cache and the study exists
        seen.append(line)
        if line.startswith("trial 0 "):
            break
    second = start_search(spec)
    out_first = "".join(seen) + first.communicate(timeout=900)[0]
    out_second = second.communicate(timeout=900)[0]
    assert first.returncode == 0 and second.returncode == 0, out_first + out_second
    ours = {int(n) for n in re.findall(r"^trial (\d+) complete", out_first, re.M)}
    theirs = {int(n) for n in re.findall(r"^trial (\d+) complete", out_second, re.M)}
    assert ours and theirs and not ours & theirs, (ours, theirs)
    states = [t.state for t in _study(spec).get_trials()]
    assert states.count(optuna.trial.TrialState.COMPLETE) >= 5
