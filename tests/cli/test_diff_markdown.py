"""The pull-request summary is safe to paste: checked by rendering it with GitHub's own Markdown parser.

The oracle is cmark-gfm, the parser github.com renders Markdown with, through the cmarkgfm bindings
(cmarkgfm 2025.10.22 bundles cmark-gfm 0.29.0.gfm.13; its table extension splits a row at every pipe no
backslash precedes, code spans included: extensions/table.c, ``unescape_pipes``). It renders with
``CMARK_OPT_UNSAFE``, so raw HTML that slipped through would show up in the output instead of being
dropped: the tests see what an unsafe renderer would do.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from hypothesis import given, settings
from hypothesis import strategies as st

from tfspec.io.markdown import code
from tfspec.base.errors import printable
from tfspec.spec.loader import cap

from test_diff_cli import DATA, commit_all, git, tfspec  # the repository helpers of the CLI tests

# A spec description is one line of at most 200 characters without backticks (the compiler's rule): the
# newlines and backticks come in through a file name, a policy message and a branch name (policy
# messages are one line: the newline comes through the file name).
HOSTILE = ("x | y <script>alert('pwned')</script> *em* _em_ [evil link](https://evil.example) "
           "![evil image](https://evil.example/i.png) @octocat #1 <b>bold</b> &amp; " + "z" * 20)


def render(markdown: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


def code_texts(rendered: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r"<code>(.*?)</code>", rendered, re.S)]


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=120)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_a_value_in_a_table_cell_is_one_code_span_with_the_value(text: str) -> None:
    rendered = render("| key | value |\n| --- | --- |\n| `k` | " + code(text, in_table=True) + " |\n")
    cells = re.findall(r"<td>(.*?)</td>", rendered, re.S)
    assert len(cells) == 2, rendered
    assert re.fullmatch(r"<code>[^<]*</code>", cells[1]), rendered
    assert code_texts(cells[1]) == [cap(printable(text))]


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_a_value_in_text_is_one_code_span_with_the_value(text: str) -> None:
    rendered = render(f"- new: {code(text)}\n")
    assert re.fullmatch(r"<ul>\n<li>new: <code>[^<]*</code></li>\n</ul>\n", rendered), rendered
    assert code_texts(rendered) == [cap(printable(text))]


def test_values_are_cut_at_80_characters_and_kept_on_one_line() -> None:
    assert code("a" * 80) == "`" + "a" * 80 + "`"
    assert code("a" * 81) == "`" + "a" * 80 + "…`"
    assert code("one\ntwo") == "`one\\ntwo`"
    assert code("``a``") == "``` ``a`` ```"
    assert code(" a ") == "`  a  `"
    assert code("a|b", in_table=True) == "`a\\|b`"


def _hostile_repository(tmp_path: Path) -> Path:
    """Base: a valid spec. Head: hostile text in a spec value, a spec file name, a policy message and the
    base revision's branch name."""
    repo = tmp_path / "repo"
    shutil.copytree(DATA, repo, ignore=shutil.ignore_patterns(".tfspec"))
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "base")
    git(repo, "branch", "base|<b>`x`</b>@octocat")  # Git refuses [, :, spaces in branch names
    lite = repo / "specs" / "digits-lite.yaml"
    lite.write_text(lite.read_text().replace("description: Handwritten digit classifier, small (8x8 grayscale)",
                                             f"description: {json.dumps(HOSTILE)}"))
    hostile_file = repo / "specs" / "evil|<i>`x`\n# heading [l](https:evil)@octocat.yaml"
    hostile_file.write_text((repo / "specs" / "digits.yaml").read_text().replace("name: digits", "name: other"))
    (repo / "standards" / "policies.yaml").write_text(
        (repo / "standards" / "policies.yaml").read_text()
        + "  - name: hostile-message\n    severity: warning\n    rule: 'false'\n"
        # one line (a policy message must be): the newline comes in through the file name instead
        + f"    message: {json.dumps('<img src=x onerror=alert(1)> | [click](javascript:alert(1)) `t` @octocat # heading')}\n")
    commit_all(repo, "head")
    return repo


_ALLOWED_TAGS = {"h2", "h3", "p", "table", "thead", "tbody", "tr", "th", "td", "code", "strong", "em", "details",
                 "summary", "ul", "li"}


def test_hostile_values_names_and_messages_cannot_inject_markup(tmp_path: Path) -> None:
    repo = _hostile_repository(tmp_path)
    dist = tmp_path / "dist" / "digits-lite"
    dist.mkdir(parents=True)
    (dist / "report.json").write_text(json.dumps({
        "spec": {}, "passed": True, "baseline": {"metric": "<script>alert(1)</script>", "value": 1},
        "targets": {"a|<b>t</b>": {"metrics": {"[m](https://evil.example)": 1.0},
                                   "gates": [{"name": "g|<img src=x>", "limit": 1, "value": 0.5, "passed": True}]}}}))
    result = tfspec(repo, "diff", "specs", "--base", "base|<b>`x`</b>@octocat",
                    "--base-dist", str(tmp_path / "dist"), "--head-dist", str(tmp_path / "dist"))
    assert result.returncode == 0, result.stderr
    markdown = result.stdout
    assert "description" in markdown and "hostile-message" in markdown and "evil|<i>" in markdown
    rendered = render(markdown)
    assert {t.lower() for t in re.findall(r"</?([A-Za-z][A-Za-z0-9]*)", rendered)} <= _ALLOWED_TAGS
    assert rendered.count("<h2>") == 1 and rendered.count("<h3>") == 3  # ours only: the newline made no heading
    outside = re.sub(r"<code>.*?</code>", "", rendered, flags=re.S)
    for word in ("evil", "alert", "octocat", "script", "heading", "click"):
        assert word not in outside, word
    for table in re.findall(r"<table>.*?</table>", rendered, re.S):
        header = len(re.findall(r"<th[ >]", table))
        for row in re.findall(r"<tr>.*?</tr>", table, re.S)[1:]:
            assert len(re.findall(r"<td[ >]", row)) == header, row
    texts = code_texts(rendered)
    assert max(len(t) for t in texts) <= 201  # a diagnostic line; values are cut at 80
    (description,) = [t for t in texts if t.startswith('"x | y <script>')]
    assert description == cap(printable(json.dumps(HOSTILE, ensure_ascii=False)))
    assert len(description) == 81 and "\n" not in description
    assert "from ``base|<b>`x`</b>@octocat`` (" in markdown  # a backtick inside: a longer fence
    assert "base|<b>`x`</b>@octocat" in texts


def test_long_lists_are_cut_with_counts_and_files_are_collapsed() -> None:
    from tfspec.io.diff_markdown import render_summary
    from tfspec.io.spec_diff import DiffResult, KeyChange, Revision, SpecDiff, SpecSide

    steps = tuple((f"step{i:02d}", f"{i:064x}") for i in range(30))
    base = SpecSide("specs/big.yaml", "big", 1, "big", (), {}, {f"f{i:03d}": "a" for i in range(150)},
                    {f"f{i:03d}": "a" for i in range(150)}, steps)
    head = SpecSide("specs/big.yaml", "big", 1, "big", (), {}, {f"f{i:03d}": "b" for i in range(150)},
                    {f"f{i:03d}": "b" for i in range(150)}, tuple((s, f + "x") for s, f in steps))
    diff = SpecDiff(base, head, keys=tuple(KeyChange(f"k{i:02d}", "1", "2") for i in range(40)),
                    files_changed=tuple(f"f{i:03d}" for i in range(150)),
                    steps_rerun=tuple(s for s, _ in steps))
    text = render_summary(DiffResult("specs", Revision("main", "a" * 40), Revision("HEAD", "b" * 40), None, (diff,)))
    main_table, _, rest = text.partition("<details>\n<summary>25 more key paths</summary>")
    assert main_table.count("| `k") == 15 and rest.split("</details>")[0].count("| `k") == 25
    assert "30 of 30 steps run" in text and "`step11` and 18 more." in text
    files = text.split("<summary>Generated files: 150 changed, 0 added, 0 removed</summary>")[1]
    assert files.count("| changed |") == 100 and "and 50 more" in files
    assert len(text.encode()) < 20_000


def test_the_comparison_with_the_released_model_is_shown_beside_the_metrics() -> None:
    """A report whose target was measured beside its released model (``targets[].released``): the released
    model's figure and ``worse_by`` of each side are rows of the metrics table; its gates are among the gates."""
    from tfspec.io.diff_markdown import render_summary
    from tfspec.io.spec_diff import DiffResult, KeyChange, Revision, SpecDiff, SpecSide

    def report(candidate: float, released: float, passed: bool) -> dict[str, object]:
        gate = {"name": "vs_released.max_accuracy_drop", "limit": 0.0, "value": released - candidate, "passed": passed}
        return {"passed": passed, "targets": {"serving": {
            "metrics": {"accuracy": candidate}, "gates": [gate],
            "released": {"found": True, "metric": "accuracy", "metrics": {"value": released, "accuracy": released},
                         "change": {"worse_by": round(released - candidate, 4)}}}}}

    sides = [SpecSide("specs/d.yaml", "d", 1, "d", (), {}, {}, {}, (), report=r, report_place=f"{p}/report.json")
             for r, p in ((report(0.95, 0.94, True), "base"), (report(0.93, 0.95, False), "head"))]
    text = render_summary(DiffResult("specs", Revision("main", "a" * 40), Revision("HEAD", "b" * 40), None,
                                     (SpecDiff(sides[0], sides[1], keys=(KeyChange("training.epochs", "30", "10"),)),)))
    assert "| `serving` | `released.accuracy` | 0.94 | 0.95 | +0.01 |" in text, text
    assert "| `serving` | `released.worse_by` | -0.01 | 0.02 | +0.03 |" in text, text
    assert "| `serving` | `vs_released.max_accuracy_drop` | 0 | -0.01 passed | 0.02 **missed** |" in text, text
