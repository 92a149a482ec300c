"""Fixtures of the shipped-form tests: one sdist and wheel per session, built from a clean copy of the
checkout; two fresh venvs with that wheel installed (with the runtime extra, and without any extra); one
trained dist of the short digits example, made by the installed wheel; and, for the image tests, buildah
with the tests' image store, the stand-in base image and a local registry."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from images_testing import BASE_REPOSITORY, Buildah, Registry, buildah_environment, images_missing, stand_in_base
from shipped_testing import Venv, build_distributions, clean_copy, example_copy, make_venv

# Seconds each session fixture took (docs/benchmarks.md: what the shipped tests cost); printed at the end.
COSTS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    if COSTS:
        terminalreporter.write_line("shipped fixtures: " + ", ".join(f"{k} {v:.0f} s" for k, v in COSTS.items()))


def _timed(name: str, started: float) -> None:
    COSTS[name] = time.monotonic() - started


@pytest.fixture(scope="session")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel) of a clean copy of this checkout; the wheel is built from the sdist."""
    started = time.monotonic()
    work = tmp_path_factory.mktemp("distributions")
    source = clean_copy(work / "source")
    out = work / "dist"
    out.mkdir()
    built = build_distributions(source, out)
    _timed("sdist+wheel", started)
    return built


@pytest.fixture(scope="session")
def bare_venv(tmp_path_factory: pytest.TempPathFactory, distributions: tuple[Path, Path]) -> Venv:
    """The wheel without extras (``pipx install tfspec``): the compiler alone."""
    venv = make_venv(tmp_path_factory.mktemp("venvs") / "bare", str(distributions[1]))
    COSTS["bare venv"] = venv.seconds
    return venv


@pytest.fixture(scope="session")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory, distributions: tuple[Path, Path]) -> Venv:
    """The wheel with the runtime extra (``pip install 'tfspec[runtime]'``)."""
    venv = make_venv(tmp_path_factory.mktemp("venvs") / "runtime", f"{distributions[1]}[runtime]")
    COSTS["runtime venv"] = venv.seconds
    return venv


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    return example_copy(tmp_path / "examples")


# The digits example, shorter (fewer epochs), and its gpu_cluster target made runnable here: two CPU
# workers. Layers, compression, the distribution and the other targets are the example's.
SHIPPED_EXAMPLE = {
    "epochs: 40": "epochs: 12",
    "fine_tune_epochs: 10}": "fine_tune_epochs: 4}",
    "    workers: 4\n": "    workers: 2\n",
    "gpus_per_worker: 2": "gpus_per_worker: 0",
}


def shipped_example(examples: Path) -> Path:
    spec = examples / "digits" / "deploy.yaml"
    text = spec.read_text("utf-8")
    for old, new in SHIPPED_EXAMPLE.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    shipped = examples / "digits" / "shipped.yaml"
    shipped.write_text(text, "utf-8")
    return shipped


class Trained:
    """The shipped example run by the installed wheel: its spec, its dist, the run's JSON output; the
    folder it ran in (``examples``, holding ``digits/`` and ``dist/``)."""

    def __init__(self, spec: Path, dist: Path, output: dict, seconds: float) -> None:
        self.spec, self.dist, self.output, self.seconds = spec, dist, output, seconds
        self.examples = spec.parent.parent


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, runtime_venv: Venv) -> Trained:
    examples = example_copy(tmp_path_factory.mktemp("trained") / "examples")
    spec = shipped_example(examples)
    started = time.monotonic()
    done = runtime_venv.run("run", "digits/shipped.yaml", "--quiet", "--json", cwd=examples, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    seconds = time.monotonic() - started
    COSTS["example run"] = seconds
    output = json.loads(done.stdout)
    return Trained(spec, examples / output["dist"], output, seconds)  # relative to the working folder


# --- images ------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def buildah(registry: Registry) -> Iterator[Buildah]:
    """buildah on the tests' own image store (below the cache folder), chroot isolation. At the end, what
    this session left there is removed: every container and image named after its registry (the images it
    built, tagged as the manifests name them, and pulled back), and containers of the stand-in base."""
    with tempfile.TemporaryDirectory(prefix="tfspec-buildah-") as runroot:
        tool = Buildah(buildah_environment(Path(runroot)))
        try:
            yield tool
        finally:
            ours = (registry.host + "/", BASE_REPOSITORY + ":")
            for container in json.loads(tool("containers", "--json", check=False).stdout or "null") or []:
                if str(container.get("imagename", "")).startswith(ours):
                    tool("rm", container["id"], check=False)
            images = json.loads(tool("images", "--json", check=False).stdout or "null") or []
            tool.remove_images(*(i["id"] for i in images if any(n.startswith(registry.host + "/")
                                                                 for n in i.get("names") or [])))


@pytest.fixture(scope="session")
def stand_in(buildah: Buildah) -> str:
    started = time.monotonic()
    name = stand_in_base(buildah)
    _timed("stand-in base", started)
    return name


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reason = images_missing()
    if reason is not None:
        pytest.skip(reason)
    with Registry(tmp_path_factory.mktemp("registry")) as running:
        yield running
