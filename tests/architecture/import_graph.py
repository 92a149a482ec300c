"""The import graph of tfspec as the interpreter follows it, read from the source (nothing is imported).

An edge ``a -> b`` means that running module ``a`` may run module ``b``:

* every ``import`` and ``from ... import`` anywhere in ``a``, at the top or inside a function (a lazy import
  still runs, only later), except under ``if TYPE_CHECKING:`` (never run);
* ``importlib.import_module("tfspec....")`` with a literal name, or an f-string whose literal prefix names
  the modules it can reach (``f"tfspec.runtime.steps.{kind}"``: every module below ``tfspec.runtime.steps``);
* a PEP 562 lazy name: ``from tfspec import compile`` runs the module the package's ``_LAZY`` table names for
  ``compile``. The imports inside such a package's ``__getattr__`` are edges of whoever imports the name,
  not of the package itself (importing ``tfspec.plan`` runs ``tfspec/__init__.py``, not its lazy names).

Importing ``a.b.c`` runs the packages ``a`` and ``a.b`` first: :func:`reachable` follows those too.
"""

from __future__ import annotations

import ast
import dataclasses
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ["Module", "scan", "edges", "graph", "reachable", "chain_to", "cycle", "layer_of", "violations"]


@dataclasses.dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


def scan(source_root: Path, top: str = "tfspec") -> dict[str, Module]:
    """Every module below ``source_root/top``, by dotted name (a package by its own name)."""
    modules: dict[str, Module] = {}
    for path in sorted((source_root / top).rglob("*.py")):
        parts = path.relative_to(source_root).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        modules[".".join(parts)] = Module(".".join(parts), path, is_package)
    return modules


def _package_of(module: Module) -> str:
    return module.name if module.is_package else module.name.rpartition(".")[0]


def _absolute(module: Module, name: str, level: int) -> str:
    """``name`` imported with ``level`` leading dots from ``module``, made absolute."""
    if not level:
        return name
    anchor = _package_of(module).split(".")
    anchor = anchor[:len(anchor) - level + 1]
    return ".".join(anchor + ([name] if name else []))


def _known(name: str, known: Iterable[str]) -> str | None:
    """The longest known module ``name`` is or lies in (``tfspec.spec.loader.load_yaml`` -> ``tfspec.spec.loader``)."""
    known = set(known)
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _lazy_table(module: Module, tree: ast.Module) -> dict[str, str]:
    """A package's PEP 562 names: ``_LAZY = {name: "submodule"}`` or ``{name: ("absolute.module", attr)}``."""
    if not module.is_package:
        return {}
    table: dict[str, str] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
            node.target if isinstance(node, ast.AnnAssign) else None
        if not (isinstance(target, ast.Name) and target.id == "_LAZY" and isinstance(node.value, ast.Dict)):
            continue
        for key, value in zip(node.value.keys, node.value.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                continue
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                table[key.value] = f"{module.name}.{value.value}"
            elif isinstance(value, ast.Tuple) and value.elts and isinstance(value.elts[0], ast.Constant):
                table[key.value] = str(value.elts[0].value)
    return table


def _import_module_target(module: Module, call: ast.Call) -> tuple[str, bool] | None:
    """``(name, is_prefix)`` of an ``importlib.import_module`` call with a literal (prefix) name, else None."""
    func = call.func
    is_import_module = (isinstance(func, ast.Attribute) and func.attr == "import_module"
                        and isinstance(func.value, ast.Name) and func.value.id == "importlib") or \
                       (isinstance(func, ast.Name) and func.id == "import_module")
    if not is_import_module or not call.args:
        return None
    argument = call.args[0]
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        name, is_prefix = argument.value, False
    elif isinstance(argument, ast.JoinedStr):
        literal = ""
        for part in argument.values:
            if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                break
            literal += part.value
        if not literal:
            return None
        name, is_prefix = literal, True
    else:
        return None
    level = len(name) - len(name.lstrip("."))
    if level:  # relative: to the package named by the second argument (``__name__`` of a package, ``__package__``)
        name = _absolute(module, name[level:], level)
    return name, is_prefix


def _getattr_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes inside a module-level ``def __getattr__`` (PEP 562)."""
    inside: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            inside.update(id(child) for child in ast.walk(node))
    return inside


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (read by type checkers, never run)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
                isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
                or isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"):
            for child in node.body:
                inside.update(id(grandchild) for grandchild in ast.walk(child))
    return inside


def _parse(module: Module) -> ast.Module:
    return ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))


def edges(module: Module, modules: Mapping[str, Module], lazy: Mapping[str, Mapping[str, str]]) -> set[str]:
    """The tfspec modules that running ``module`` may run directly (see the module docstring)."""
    tree = _parse(module)
    skip = _type_checking_nodes(tree) | (_getattr_nodes(tree) if lazy.get(module.name) else set())
    found: set[str] = set()

    def add(name: str) -> None:
        target = _known(name, modules)
        if target is not None:
            found.add(target)

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.module or "", node.level)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in modules:  # a submodule (its packages are run first: see reachable)
                    found.add(full)
                    continue
                add(base)  # a name defined in ``base``, or one of its lazy names
                if alias.name in lazy.get(base, {}):
                    add(lazy[base][alias.name])
        elif isinstance(node, ast.Call):
            target = _import_module_target(module, node)
            if target is None:
                continue
            name, is_prefix = target
            if is_prefix:
                found.update(m for m in modules if m.startswith(name) and m != module.name)
            else:
                add(name)
    found.discard(module.name)
    return found


def graph(modules: Mapping[str, Module]) -> dict[str, set[str]]:
    lazy = {name: table for name, module in modules.items() if (table := _lazy_table(module, _parse(module)))}
    return {name: edges(module, modules, lazy) for name, module in modules.items()}


def _with_packages(name: str) -> list[str]:
    """``a.b.c`` -> ``a.b.c``, ``a.b``, ``a``: what importing it runs (the module first, so that a chain
    names the module imported rather than the package around it)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def reachable(graph: Mapping[str, set[str]], start: str) -> dict[str, str | None]:
    """Every module running ``start`` may run, each with the module it was reached from (breadth first, so
    the chains are shortest). Importing a module runs its enclosing packages first: they are reached too."""
    parent: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for target in sorted(graph.get(current, ())):
            for step in _with_packages(target):
                if step in graph and step not in parent:
                    parent[step] = current
                    queue.append(step)
    return parent


def chain_to(parents: Mapping[str, str | None], end: str) -> list[str]:
    chain = [end]
    while (previous := parents[chain[-1]]) is not None:
        chain.append(previous)
    return chain[::-1]


def cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """An import cycle, as a chain from a module back to itself, or None. A module's own enclosing packages
    are initialised before it runs (``from . import x`` names one): an edge to them is no cycle."""
    direct = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(direct.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(direct):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def layer_of(name: str, layers: Mapping[str, Iterable[str]], root: str = "tfspec") -> str | None:
    """The row of the layer table a module belongs to: the longest row naming it or a package above it (the
    root package's row holds only the root's ``__init__``)."""
    if name == root:
        return root
    best = None
    for layer in layers:
        if layer != root and (name == layer or name.startswith(layer + ".")) and (best is None or len(layer) > len(best)):
            best = layer
    return best


def violations(graph: Mapping[str, set[str]], layers: Mapping[str, Iterable[str]], root: str = "tfspec") -> list[str]:
    """One line per module that may run a module its layer must not reach, with the chain that gets there.

    Every layer may run the root package (importing any tfspec module runs it first); the root package's own
    imports are checked against its row like every other module's.
    """
    found: list[str] = []
    for name in sorted(graph):
        layer = layer_of(name, layers, root)
        if layer is None:
            found.append(f"{name}: in no row of the layer table")
            continue
        allowed = {layer, root, *layers[layer]}
        parents = reachable(graph, name)
        for other in parents:  # breadth-first order: the shortest chain first
            other_layer = layer_of(other, layers, root)
            if other_layer in allowed:
                continue
            rule = f"may import only {', '.join(sorted(layers[layer]))}" if layers[layer] else "imports nothing else of tfspec"
            found.append(f"{' -> '.join(chain_to(parents, other))}: {layer} {rule}")
            break  # the shortest chain of this module is enough to fix it
    return found
