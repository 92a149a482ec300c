"""docs/reference/spec.md: generated from the JSON Schema, complete, and never stale."""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path

from tfspec.compiler.docs import REFERENCE_PATH, REGENERATE_COMMAND, spec_reference_markdown
from tfspec.spec.schema import spec_json_schema

ROOT = Path(__file__).parents[2]


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (\S+)\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_committed_reference_is_up_to_date() -> None:
    committed = (ROOT / REFERENCE_PATH).read_text(encoding="utf-8")
    generated = spec_reference_markdown()
    if committed != generated:
        diff = "".join(list(difflib.unified_diff(committed.splitlines(True), generated.splitlines(True),
                                                 REFERENCE_PATH, "generated"))[:60])
        raise AssertionError(f"{REFERENCE_PATH} is stale; regenerate it with\n\n    .venv/bin/{REGENERATE_COMMAND}\n\n{diff}")


def test_every_field_has_a_row_with_type_default_and_description() -> None:
    schema = spec_json_schema()
    sections = _sections(spec_reference_markdown(schema))
    definitions = {"Spec": schema, **schema["$defs"]}
    assert set(sections) == set(definitions) | {"Contents"}
    for name, definition in definitions.items():
        rows = {}
        for line in sections[name].splitlines():
            match = re.match(r"^\| `([a-z_0-9]+)` \| (.+?) \| (.+?) \| (.*?) \| (.+) \|$", line)
            if match:
                rows[match[1]] = match.groups()[1:]
        assert set(rows) == set(definition.get("properties", {})), name
        for field, (type_text, default, _, description) in rows.items():
            assert type_text.strip() and default.strip(), (name, field)
            assert len(description) >= 8, f"{name}.{field} has no real description: {description!r}"
            if field in definition.get("required", []):
                assert default == "**required**", (name, field)


def test_every_link_points_at_a_section() -> None:
    text = spec_reference_markdown()
    anchors = {heading.lower() for heading in re.findall(r"^## (\S+)$", text, flags=re.M)}
    links = set(re.findall(r"\]\(#([a-z0-9_-]+)\)", text))
    assert links and links <= anchors, links - anchors


def test_defaults_and_tags_are_shown() -> None:
    sections = _sections(spec_reference_markdown())
    assert "| `epochs` | integer | `10` | ≥ 1; ≤ 100000 |" in sections["Training"]
    assert "Selected by `kind: tflite`." in sections["TfliteTarget"]
    assert "Selected by `type: dense`." in sections["DenseLayer"]
    assert "`kind: adam` with its defaults" in sections["Training"]
    assert "Keys not listed here are allowed" in sections["TargetOverlay"]


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "spec.md"
    stale.write_text("# old\n")
    command = [sys.executable, "-m", "tfspec.compiler.docs", "--out", str(stale), "--check"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1
    assert "-# old" in result.stdout
    assert f"run `{REGENERATE_COMMAND}`" in result.stderr
    assert stale.read_text() == "# old\n"
    subprocess.run(command[:-1], check=True, capture_output=True)
    assert subprocess.run(command, capture_output=True, text=True).returncode == 0
