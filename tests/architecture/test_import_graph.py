"""The import graph of tfspec: no cycles (lazy imports inside functions count too), and the layers hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src"  # every tfspec package lives below src/tfspec/


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in sorted((SOURCE / "tfspec").rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """tfspec modules ``name`` imports, anywhere in the file (a lazy import still makes a loop)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, path, known) for name, path in modules.items()}
    # A module's own enclosing packages are initialised before it runs (``from . import x`` names one):
    # not an edge of the graph.
    return {name: {i for i in imports if not name.startswith(i + ".")} for name, imports in graph.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_module_table_finds_the_packages() -> None:
    graph = _graph()
    assert {"tfspec.plan.model", "tfspec.compiler.pipeline", "tfspec.runtime.executor", "tfspec.cli"} <= set(graph)
    assert "tfspec.compiler.resolve" in graph["tfspec.compiler.pipeline"]


def test_the_import_graph_has_no_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(("package", "forbidden"), [
    ("tfspec.spec", ("tfspec.plan", "tfspec.compiler", "tfspec.runtime", "tfspec.cli", "tfspec.commands")),
    ("tfspec.plan", ("tfspec.spec", "tfspec.compiler", "tfspec.runtime", "tfspec.cli", "tfspec.commands")),
    # the pure compiler: the drivers that write (tfspec.io) sit above it
    ("tfspec.compiler", ("tfspec.runtime", "tfspec.cli", "tfspec.commands", "tfspec.io", "tfspec.running",
                         "tfspec.search")),
    ("tfspec.runtime", ("tfspec.compiler.pipeline", "tfspec.compiler.resolve", "tfspec.compiler.parse",
                        "tfspec.spec.loader", "tfspec.cli", "tfspec.commands", "tfspec.search")),
    # the search driver sits beside the runtime, below the CLI
    ("tfspec.search", ("tfspec.cli", "tfspec.commands", "tfspec.io")),
])
def test_layers(package: str, forbidden: tuple[str, ...]) -> None:
    graph = _graph()
    for name, imports in graph.items():
        if name == package or name.startswith(package + "."):
            bad = sorted(i for i in imports if i.startswith(forbidden))
            assert not bad, f"{name} imports {bad}"
