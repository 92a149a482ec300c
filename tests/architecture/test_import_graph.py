"""The layers of tfspec hold along the whole import chain, and the graph has no cycle.

The walker (``import_graph.py``) follows every import transitively: function-level imports, literal and
f-string ``importlib.import_module`` calls and PEP 562 lazy names included. The tests below also prove that
it catches each of those (a bad import injected into a copy of the tree), and a subprocess checks what
importing the runtime and the plan really loads.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import import_graph

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src"  # every tfspec package lives below src/tfspec/

# The one table of layers: each package, and every tfspec package its modules may run, directly or through
# others (importing any module runs the root package ``tfspec`` first: every row may reach it). The README's
# "Layers" table is this table.
LAYERS: dict[str, frozenset[str]] = {
    "tfspec": frozenset({"tfspec.base"}),  # the package's own __init__: its public API is imported lazily
    "tfspec.base": frozenset(),
    "tfspec.templates": frozenset(),
    "tfspec.spec": frozenset({"tfspec.base"}),
    "tfspec.plan": frozenset({"tfspec.base"}),
    "tfspec.compiler": frozenset({"tfspec.base", "tfspec.spec", "tfspec.plan"}),
    "tfspec.runtime": frozenset({"tfspec.base", "tfspec.plan"}),
    "tfspec.io": frozenset({"tfspec.base", "tfspec.spec", "tfspec.plan", "tfspec.compiler"}),
    "tfspec.running": frozenset({"tfspec.base", "tfspec.spec", "tfspec.plan", "tfspec.compiler", "tfspec.runtime"}),
    "tfspec.search": frozenset({"tfspec.base", "tfspec.spec", "tfspec.plan", "tfspec.compiler", "tfspec.runtime",
                                "tfspec.running"}),
    "tfspec.commands": frozenset({"tfspec.base", "tfspec.spec", "tfspec.plan", "tfspec.compiler", "tfspec.runtime",
                                  "tfspec.running", "tfspec.io", "tfspec.search"}),
    "tfspec.cli": frozenset({"tfspec.base", "tfspec.spec", "tfspec.plan", "tfspec.compiler", "tfspec.runtime",
                             "tfspec.running", "tfspec.io", "tfspec.search", "tfspec.commands"}),
    "tfspec.__main__": frozenset({"tfspec.base", "tfspec.spec", "tfspec.plan", "tfspec.compiler", "tfspec.runtime",
                                  "tfspec.running", "tfspec.io", "tfspec.search", "tfspec.commands", "tfspec.cli"}),
}


def _graph(source: Path = SOURCE) -> dict[str, set[str]]:
    return import_graph.graph(import_graph.scan(source))


def test_the_module_table_finds_the_packages() -> None:
    graph = _graph()
    assert {"tfspec.plan.model", "tfspec.base.errors", "tfspec.compiler.pipeline", "tfspec.runtime.executor",
            "tfspec.cli"} <= set(graph)
    assert "tfspec.compiler.resolve" in graph["tfspec.compiler.pipeline"]
    # the executor's f-string import_module reaches every step module
    assert {"tfspec.runtime.steps.train", "tfspec.runtime.steps.bundle"} <= graph["tfspec.runtime.executor"]


def test_the_import_graph_has_no_cycle() -> None:
    cycle = import_graph.cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_layer_runs_only_what_the_table_allows() -> None:
    found = import_graph.violations(_graph(), LAYERS)
    assert not found, "imports across the layers:\n" + "\n".join(found)


def test_the_layer_table_is_closed_and_covers_every_package() -> None:
    for layer, allowed in LAYERS.items():
        assert allowed <= set(LAYERS), f"{layer}: {sorted(allowed - set(LAYERS))} are no rows"
        for lower in allowed:
            assert LAYERS[lower] <= allowed, f"{layer} may import {lower}, which may import " \
                                             f"{sorted(LAYERS[lower] - allowed)}: list them in {layer}'s row"
    top = SOURCE / "tfspec"
    packages = {f"tfspec.{p.name}" for p in top.iterdir() if (p / "__init__.py").is_file()}
    modules = {f"tfspec.{p.stem}" for p in top.glob("*.py") if p.name != "__init__.py"}
    assert packages | modules | {"tfspec"} == set(LAYERS)


def _readme_table() -> dict[str, frozenset[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Layers", 1)[1].split("\n#", 1)[0]
    rows: dict[str, frozenset[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`tfspec"):
            rows[cells[0].strip("`")] = frozenset(re.findall(r"`(tfspec[\w.]*)`", cells[1]))
    return rows


def test_the_readme_states_the_same_table() -> None:
    assert _readme_table() == LAYERS


# --- the walker can fail: each way of importing, injected into a copy of the tree ---------------------------

def _copy_with(tmp_path: Path, module: str, code: str) -> Path:
    shutil.copytree(SOURCE / "tfspec", tmp_path / "tfspec", ignore=shutil.ignore_patterns("__pycache__", "*.j2"))
    path = tmp_path / Path(*module.split(".")).with_suffix(".py")
    if not path.exists():
        path = path.with_suffix("") / "__init__.py"
    path.write_text(path.read_text(encoding="utf-8") + "\n\n" + code, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("module", "code", "chain"), [
    # a function-level import, two modules deep: train -> compiler.plan -> compiler.resolve -> spec.loader
    ("tfspec.runtime.steps.train", "def _metric():\n    from tfspec.compiler.plan import quality_metric\n",
     "tfspec.runtime.steps.train -> tfspec.compiler.plan"),
    # transitively, through a layer the runtime may import
    ("tfspec.plan.model", "def _late():\n    import tfspec.compiler.naming\n",
     "tfspec.plan.model -> tfspec.compiler.naming"),
    # importlib with a literal name
    ("tfspec.runtime.cache", "import importlib\n_BATCH = importlib.import_module('tfspec.io.batch')\n",
     "tfspec.runtime.cache -> tfspec.io.batch"),
    # importlib with an f-string: every module below its literal prefix
    ("tfspec.runtime.worker", "import importlib\n\ndef _step(name):\n"
                              "    return importlib.import_module(f'tfspec.search.{name}')\n",
     "tfspec.runtime.worker -> tfspec.search"),
    # a PEP 562 lazy name of the root package
    ("tfspec.runtime.report", "def _compile(path):\n    from tfspec import compile\n    return compile(path)\n",
     "tfspec.runtime.report -> tfspec.compiler.pipeline"),
    # relative imports resolve like the interpreter resolves them
    ("tfspec.spec.model", "def _plan():\n    from ..compiler import plan\n", "tfspec.spec.model -> tfspec.compiler.plan"),
])
def test_an_injected_import_is_reported_with_its_chain(tmp_path: Path, module: str, code: str, chain: str) -> None:
    source = _copy_with(tmp_path, module, code)
    found = import_graph.violations(_graph(source), LAYERS)
    assert any(chain in line for line in found), "\n".join(found) or "nothing reported"
    assert all(re.fullmatch(r"tfspec[\w.]*( -> tfspec[\w.]*)+: tfspec[\w.]* (may import only|imports nothing else).*",
                            line) for line in found), "\n".join(found)


def test_an_injected_import_reaches_every_layer_above_it(tmp_path: Path) -> None:
    """The import test of old checked direct imports only: the runtime reaching the compiler through the plan
    passed."""
    source = _copy_with(tmp_path, "tfspec.plan.params", "def _late():\n    from tfspec.spec import loader\n")
    found = import_graph.violations(_graph(source), LAYERS)
    runtime = [line for line in found if line.startswith("tfspec.runtime.")]
    assert runtime and all(" -> tfspec.plan" in line and line.split(":")[0].endswith("tfspec.spec.loader")
                           for line in runtime), "\n".join(found)


def test_what_is_never_run_is_no_edge(tmp_path: Path) -> None:
    source = _copy_with(tmp_path, "tfspec.runtime.context", "from typing import TYPE_CHECKING\n"
                                                            "if TYPE_CHECKING:\n    from tfspec.compiler import plan\n")
    graph = _graph(source)
    assert "tfspec.compiler.plan" not in graph["tfspec.runtime.context"]
    # importing tfspec runs tfspec/__init__.py, not the modules its lazy names come from
    assert "tfspec.compiler.pipeline" not in import_graph.reachable(graph, "tfspec.plan")
    assert not import_graph.violations(graph, LAYERS)


def test_an_injected_cycle_is_reported(tmp_path: Path) -> None:
    source = _copy_with(tmp_path, "tfspec.base.errors", "def _late():\n    from tfspec.base import outputs\n")
    assert import_graph.cycle(_graph(source)) == ["tfspec.base.errors", "tfspec.base.outputs", "tfspec.base.errors"]


def test_a_module_outside_the_table_is_reported(tmp_path: Path) -> None:
    source = _copy_with(tmp_path, "tfspec.base.errors", "")
    (source / "tfspec" / "extras").mkdir()
    (source / "tfspec" / "extras" / "__init__.py").write_text("", encoding="utf-8")
    assert "tfspec.extras: in no row of the layer table" in import_graph.violations(_graph(source), LAYERS)


# --- what importing really loads ---------------------------------------------------------------------------

_LOADED = """
import importlib, pkgutil, sys
package = sys.argv[1]
module = importlib.import_module(package)
if package != "tfspec":  # the root package alone (below it is every layer)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
print(" ".join(sorted(m for m in sys.modules if m == "tfspec" or m.startswith("tfspec.") or m == "tensorflow")))
"""


@pytest.mark.parametrize(("package", "allowed"), [
    ("tfspec", ("tfspec", "tfspec.base")),
    ("tfspec.plan", ("tfspec", "tfspec.base", "tfspec.plan")),
    ("tfspec.runtime", ("tfspec", "tfspec.base", "tfspec.plan", "tfspec.runtime")),
])
def test_importing_loads_only_the_layers_below(package: str, allowed: tuple[str, ...]) -> None:
    """Every module of the package imported in a fresh interpreter: nothing of the compiler, the spec or io is
    loaded (and no TensorFlow: the runtime imports it when a step runs)."""
    proc = subprocess.run([sys.executable, "-c", _LOADED, package], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.split()
    assert package in loaded
    outside = [m for m in loaded if not any(m == a or m.startswith(a + ".") for a in allowed)]
    assert not outside, f"importing {package} loads {outside}"
