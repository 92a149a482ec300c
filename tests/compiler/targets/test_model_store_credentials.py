"""A model store takes the same ``credentials`` block as every other store; its earlier spelling
``credentials_secret`` is still read for one release, with a build warning at its line."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tfspec.compiler.pipeline import compile_spec
from tfspec_testing import EXAMPLE, tfspec_command


def _spec(tmp_path: Path, store: dict[str, Any]) -> Path:
    tree = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    serving = next(t for t in tree["targets"] if t["kind"] == "tf_serving")
    serving["model_store"] = {"base_path": "s3://models/digits", **store}
    tree["targets"].append({"kind": "kserve", "name": "kserve",
                            "model_store": {"base_path": "s3://models/digits-kserve", **store}})
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return path


def _line_of(path: Path, text: str) -> list[int]:
    return [number for number, line in enumerate(path.read_text("utf-8").splitlines(), 1) if text in line]


def test_the_earlier_spelling_reads_as_the_block_with_a_warning_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = _spec(tmp_path / "old", {"credentials_secret": "digits-store"})
    new = _spec(tmp_path / "new", {"credentials": {"kubernetes_secret": "digits-store"}})
    built = {}
    for spec in (old, new):
        result = subprocess.run([*tfspec_command(), "build", str(spec), "--out", str(spec.parent / "out")],
                                capture_output=True, text=True, timeout=300, cwd=spec.parent)
        assert result.returncode == 0, result.stderr
        built[spec] = result
    warned = [line for line in built[old].stderr.splitlines() if "credentials_secret is deprecated" in line]
    lines = _line_of(old, "credentials_secret: digits-store")
    assert [w.split(":")[1] for w in warned] == [str(n) for n in lines] and len(lines) == 2, built[old].stderr
    assert all(w.startswith("deploy.yaml:") or "/deploy.yaml:" in w for w in warned)
    assert "write credentials: {kubernetes_secret: digits-store}" in warned[0]
    assert "deprecated" not in built[new].stderr
    # the old spelling is the new one: the same stores, the same Secret in the kserve ServiceAccount
    stores = {spec: [t.model_store.credentials for t in compile_spec(spec, environ={}).resolved.spec.targets
                     if getattr(t, "model_store", None) is not None] for spec in (old, new)}
    assert stores[old] == stores[new] and stores[new][0].kubernetes_secret == "digits-store"
    account = yaml.safe_load((old.parent / "out" / "kserve" / "kubernetes" / "serviceaccount.yaml").read_text())
    assert account["secrets"] == [{"name": "digits-store"}]


def test_both_spellings_at_once_are_refused(tmp_path: Path) -> None:
    result = compile_spec(_spec(tmp_path, {"credentials_secret": "a", "credentials": {"kubernetes_secret": "b"}}),
                          environ={})
    assert not result.ok
    assert any("give only credentials.kubernetes_secret" in d.message for d in result.diagnostics), \
        [d.format() for d in result.diagnostics]


def test_a_model_store_refuses_variable_names_it_would_not_read(tmp_path: Path) -> None:
    """The upload uses the storage client's own credentials: a variable named here would be ignored."""
    result = compile_spec(_spec(tmp_path, {"credentials": {"access_key_id_env": "STORE_KEY_ID"}}), environ={})
    assert sorted(d.path for d in result.diagnostics) == [
        "targets[1].model_store.credentials.access_key_id_env", "targets[3].model_store.credentials.access_key_id_env"]
    assert all(d.line > 1 for d in result.diagnostics)
