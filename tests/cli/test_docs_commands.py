"""Every `tfspec` command shown in the docs runs as shown.

The commands are the ``$ tfspec ...`` lines of fenced blocks in ``docs/*.md``, ``docs/targets/*.md`` and
``README.md`` (and ``tfspec ...`` lines of ``sh``/``bash`` blocks). Each document's blocks run in order in a
sandbox that holds a copy of ``examples/`` and ``tests/data/`` laid out as in the repository; ``cd`` and
``mkdir`` lines of a block move the document's working folder. A command must exit 0 unless its block
says otherwise.

A block is described by an HTML comment on the line right before its opening fence (invisible on the
rendered page)::

    <!-- commands: cwd=examples/gitops -->         run in that folder of the sandbox (``cwd=fresh``: a new,
                                                   empty folder)
    <!-- commands: exit=2 -->                      the commands show an error: they must exit 2
    <!-- commands: slow -->                        needs TensorFlow or a long run: runs in the slow suite only
                                                   (``pytest -m slow``), with the blocks before it
    <!-- commands: not run: <the reason> -->       not runnable here (a cluster, Docker, an interactive
                                                   session, an edit the text describes); the reason is required

Keys combine (``<!-- commands: cwd=examples/digits slow -->``). Blocks marked ``<!-- validate: ... -->``
(docs/troubleshooting.md) are checked, output included, by ``test_troubleshooting_doc.py``. A ``tfspec run``
or ``search`` in a block that is neither ``slow`` nor ``not run`` fails here: mark it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfspec_testing import ROOT

DOCS = sorted([*(ROOT / "docs").glob("*.md"), *(ROOT / "docs" / "targets").glob("*.md"), ROOT / "README.md"])
FENCE = re.compile(r"^(?P<marker><!--.*?-->\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$", re.S | re.M)
MARKER = re.compile(r"^<!-- commands: (?P<keys>.*?) -->\n$")
SLOW_COMMANDS = ("run", "search")


@dataclasses.dataclass
class Block:
    doc: str
    line: int
    commands: list[str]
    cwd: str | None = None
    exit: int = 0
    slow: bool = False
    not_run: str | None = None


def _commands(lang: str, body: str) -> list[str]:
    """Shell lines of a block: ``$ `` lines (continuations joined), or ``tfspec`` lines of a sh/bash block."""
    out: list[str] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        text = line[2:] if line.startswith("$ ") else (line if lang in ("sh", "bash") and line.startswith("tfspec ")
                                                       else None)
        i += 1
        if text is None:
            continue
        while text.endswith("\\") and i < len(lines):
            text = text[:-1] + " " + lines[i].strip()
            i += 1
        out.append(text.strip())
    return out


def parse_blocks(path: Path, text: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(text):
        commands = _commands(match["lang"], match["body"])
        if not any(_is_tfspec(c) or _moves(c) for c in commands):
            continue
        block = Block(str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name,
                      text.count("\n", 0, match.start("body")), commands)
        marker = match["marker"] or ""
        if marker.startswith("<!-- validate:"):
            block.not_run = "checked with its output by test_troubleshooting_doc.py"
        elif marker:
            found = MARKER.match(marker)
            assert found, f"{block.doc}:{block.line}: malformed marker {marker.strip()!r}"
            keys = found["keys"]
            if keys.startswith("not run:"):
                block.not_run = keys[len("not run:"):].strip()
                assert block.not_run, f"{block.doc}:{block.line}: `not run:` needs a reason"
            else:
                for key in keys.split():
                    name, _, value = key.partition("=")
                    if name == "cwd":
                        block.cwd = value
                    elif name == "exit":
                        block.exit = int(value)
                    elif name == "slow":
                        block.slow = True
                    else:
                        raise AssertionError(f"{block.doc}:{block.line}: unknown marker key {name!r}")
        blocks.append(block)
    return blocks


def _is_tfspec(command: str) -> bool:
    return command.split()[:1] == ["tfspec"]


def _moves(command: str) -> bool:
    return bool(re.fullmatch(r"(mkdir( -p)? \S+ && )?cd \S+", command))


def _sandbox(root: Path) -> Path:
    for part in ("examples", "tests/data"):
        shutil.copytree(ROOT / part, root / part, ignore=shutil.ignore_patterns(
            "build", "dist", ".tfspec", "__pycache__", ".tfspec-build-cache.json", "*.html"))
    return root


def _environment() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}


def run_document(blocks: list[Block], sandbox: Path, *, with_slow: bool) -> list[str]:
    """Run a document's blocks in order; the problems found (empty: every command ran as shown)."""
    problems: list[str] = []
    cwd = sandbox
    fresh = 0
    for block in blocks:
        where = f"{block.doc}:{block.line}"
        if block.not_run is not None:
            continue
        slow_commands = [c for c in block.commands if _is_tfspec(c) and c.split()[1:2][0] in SLOW_COMMANDS]
        if slow_commands and not block.slow:
            problems.append(f"{where}: `{slow_commands[0]}` needs TensorFlow or a long run: mark the block "
                            "<!-- commands: slow --> (or `not run: <reason>`)")
            continue
        if block.slow and not with_slow:
            return problems  # the blocks after it may need what it makes: the slow suite runs them
        if block.cwd == "fresh":
            fresh += 1
            cwd = sandbox / f"fresh-{fresh}"
            cwd.mkdir()
        elif block.cwd is not None:
            cwd = sandbox / block.cwd
        for command in block.commands:
            if _moves(command):
                target = command.split()[-1]
                if command.startswith("mkdir"):
                    (cwd / target).mkdir(parents=True, exist_ok=True)
                cwd = (cwd / target).resolve()
                continue
            if not _is_tfspec(command):
                continue
            done = subprocess.run(["bash", "-c", command], cwd=cwd, env=_environment(), capture_output=True,
                                  text=True, timeout=1800 if block.slow else 180)
            if done.returncode != block.exit:
                output = (done.stdout + done.stderr).strip().splitlines()
                problems.append(f"{where}: `{command}` (in {os.path.relpath(cwd, sandbox)}) exited {done.returncode}, "
                                f"the doc shows exit {block.exit}: " + " | ".join(output[-4:]))
            elif "Usage:" in done.stderr:
                problems.append(f"{where}: `{command}`: {done.stderr.strip().splitlines()[-1]}")
    return problems


def _document_blocks(path: Path) -> list[Block]:
    return parse_blocks(path, path.read_text(encoding="utf-8"))


DOCUMENTS = [doc for doc in DOCS if _document_blocks(doc)]


@pytest.mark.parametrize("doc", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_doc_commands_run_as_shown(doc: Path, tmp_path: Path) -> None:
    problems = run_document(_document_blocks(doc), _sandbox(tmp_path), with_slow=False)
    assert problems == []


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCUMENTS if any(b.slow for b in _document_blocks(d))],
                         ids=lambda d: str(d.relative_to(ROOT)))
def test_doc_commands_that_need_tensorflow_run_as_shown(doc: Path, tmp_path: Path) -> None:
    problems = run_document(_document_blocks(doc), _sandbox(tmp_path), with_slow=True)
    assert problems == []


def test_the_runner_sees_a_command_that_does_not_run(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- commands: cwd=examples/digits -->\n```console\n$ tfspec validate deploy.yaml --no-such-flag\n```\n"
                   "```console\n$ tfspec validate missing.yaml\n```\n"
                   "```console\n$ tfspec run deploy.yaml\n```\n"
                   "<!-- commands: exit=2 -->\n```console\n$ tfspec validate deploy.yaml\n```\n", encoding="utf-8")
    problems = run_document(parse_blocks(doc, doc.read_text()), _sandbox(tmp_path / "box"), with_slow=False)
    assert len(problems) == 4, problems
    assert "--no-such-flag` (in examples/digits) exited 2" in problems[0]
    assert "missing.yaml" in problems[1] and "mark the block" in problems[2] and "exited 0" in problems[3]


def test_a_not_run_marker_needs_a_reason(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- commands: not run: -->\n```console\n$ tfspec run deploy.yaml\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="needs a reason"):
        parse_blocks(doc, doc.read_text())


def test_every_shown_command_is_run_or_says_why_not() -> None:
    """A count that moves with the docs: every block is one of run, slow, or not run with a reason."""
    blocks = [b for doc in DOCUMENTS for b in _document_blocks(doc)]
    run = [b for b in blocks if b.not_run is None]
    assert len(run) >= 15, "most blocks of commands in the docs run here"
    assert all(b.not_run for b in blocks if b.not_run is not None)
    for block in blocks:
        for command in block.commands:
            if _is_tfspec(command):
                shlex.split(command, comments=True)  # every shown command is valid shell


INTERNAL_ISSUE = re.compile(r"\b[Ii]ssues? #?\d+\b|\(#\d+\)")


def test_user_docs_name_features_not_internal_issue_numbers() -> None:
    """Docs say what a feature does; "issue 14" means nothing to a user (upstream references such as
    tensorflow/serving#1963 keep their repository and are allowed)."""
    found = [f"{doc.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
             for doc in DOCS for text in [doc.read_text(encoding="utf-8")] for m in INTERNAL_ISSUE.finditer(text)]
    assert found == []
