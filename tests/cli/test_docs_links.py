"""Relative links and #anchors in docs/ point at files and headings that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
# Pages other branches write (targets helper, lead); checked once they exist.
WRITTEN_ELSEWHERE = {"targets/README.md", "targets/tflite.md", "targets/tf_serving.md", "targets/gpu_cluster.md",
                     "benchmarks.md"}
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower-case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_links_resolve() -> None:
    problems = []
    pages = sorted(DOCS.rglob("*.md"))
    assert pages
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        text = re.sub(r"``.*?``|`[^`\n]*`", "", text)  # code spans may hold '](' (regex patterns)
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (page.parent / file_part).resolve() if file_part else page
            relative = resolved.relative_to(DOCS.resolve()).as_posix() if resolved.is_relative_to(DOCS.resolve()) else None
            if not resolved.exists():
                if relative not in WRITTEN_ELSEWHERE:
                    problems.append(f"{page.relative_to(ROOT)}: {target} does not exist")
                continue
            if anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                problems.append(f"{page.relative_to(ROOT)}: no heading for #{anchor} in {resolved.name}")
    assert problems == []
