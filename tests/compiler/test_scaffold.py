"""`tfspec init`'s starter spec: valid, and it points editors at no schema file that was not written."""

from __future__ import annotations

import re

import tfspec
from tfspec.compiler.scaffold import scaffold_spec


def test_starter_spec_compiles() -> None:
    result = tfspec.compile("deploy.yaml", text=scaffold_spec("fraud-model"), environ={})
    assert result.ok, result.diagnostics


def test_starter_spec_references_no_schema_file() -> None:
    # yaml-language-server reads a modeline only at the start of a comment line: `# yaml-language-server:`.
    text = scaffold_spec("fraud-model")
    assert not re.search(r"^#\s*yaml-language-server:", text, re.MULTILINE), text.splitlines()[:5]
    assert "tfspec schema > tfspec.schema.json" in text  # how to get one is still said
