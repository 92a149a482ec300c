"""Helpers of the image tests: buildah with the tests' own image store, the stand-in base image, a local registry.

The upstream base images (``tensorflow/tensorflow``, ``tensorflow/serving``) cannot be pulled here, so the
tests build the generated Dockerfiles on a **stand-in base**: Debian bookworm (``debootstrap --variant=minbase``
with python3, the Python 3.11 TensorFlow 2.21 supports) plus every wheel ``tfspec[runtime]`` depends on,
downloaded on the host with ``pip download`` and installed offline inside (pip inside a chroot has none of
the host's index settings). Its ``/etc/pip.conf`` says ``no-index``: a Dockerfile that needed a package the
stand-in lacks fails its build instead of reaching out. Differences from the real bases: the real
``tensorflow/tensorflow`` holds TensorFlow only (a real build downloads the other wheels from PyPI); the real
``tensorflow/serving`` holds the model server binary and no Python, so the serving image is checked by its
files and by loading its SavedModel with the stand-in's TensorFlow, not by serving.

The base is kept in an image store of its own below the cache folder (``$TFSPEC_TEST_IMAGE_CACHE``, else
``$XDG_CACHE_HOME/tfspec-test-images``, else ``~/.cache/tfspec-test-images``), tagged by a hash of what it
holds (the Debian suite and packages, the requirement list, this recipe's version): a CI cache of that
folder skips the bootstrap. The images a test builds go to the same store and are removed by the test.
buildah runs with ``--isolation chroot`` (``BUILDAH_ISOLATION``): as root it needs no container runtime.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

from tfspec_testing import ROOT

__all__ = ["CACHE", "BASE_REPOSITORY", "Buildah", "buildah_environment", "stand_in_base", "Registry", "images_missing",
           "run_as_pod", "UPSTREAM_BASES"]

CACHE = Path(os.environ.get("TFSPEC_TEST_IMAGE_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tfspec-test-images")
BASE_REPOSITORY = "localhost/tfspec-test-base"
DEBIAN_SUITE = "bookworm"  # python3 is 3.11, the Python of the runtime's wheels
DEBIAN_PACKAGES = ("python3", "python3-venv", "python3-pip")
RECIPE = 1  # bump when the base is built differently
TOOLS = ("buildah", "debootstrap", "docker-registry")


def images_missing() -> str | None:
    """Why the image tests cannot run here (None when they can): buildah's chroot isolation needs root."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing system packages: {' '.join(missing)} (.ci/system-deps installs them as root)"
    if os.geteuid() != 0:
        return "buildah --isolation chroot needs root"
    return None


def buildah_environment(runroot: Path) -> dict[str, str]:
    """The environment of every buildah process of the tests (and of ``tfspec images`` they start): the
    tests' image store below the cache folder, chroot isolation."""
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = runroot / "storage.conf"
    conf.write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{CACHE / "storage"}"\n'
                    f'runroot = "{runroot / "run"}"\n', "utf-8")
    return {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf), "BUILDAH_ISOLATION": "chroot"}


class Buildah:
    """``buildah`` with the tests' environment; every call checked."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        # what a process that runs buildah itself (tfspec images) needs to use the same store
        self.variables = {k: env[k] for k in ("CONTAINERS_STORAGE_CONF", "BUILDAH_ISOLATION")}

    def __call__(self, *args: str, timeout: float = 900, check: bool = True,
                 cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["buildah", *args], capture_output=True, text=True, env=self.env, timeout=timeout,
                              cwd=cwd)
        if check and done.returncode != 0:
            raise AssertionError(f"buildah {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                                 f"{done.stderr[-3000:]}")
        return done

    def image_exists(self, name: str) -> bool:
        return self("inspect", "--type", "image", name, check=False).returncode == 0

    def inspect(self, name: str) -> dict:
        return json.loads(self("inspect", "--type", "image", name).stdout)

    def config(self, name: str) -> dict:
        """The OCI image configuration (``Entrypoint``, ``Cmd``, ``User``, ``Labels``, ``Env``, ...)."""
        return self.inspect(name)["OCIv1"]["config"]

    @contextlib.contextmanager
    def container(self, image: str) -> Iterator[str]:
        """A working container of ``image``, removed afterwards."""
        name = self("from", "--pull=never", image).stdout.strip().splitlines()[-1]
        try:
            yield name
        finally:
            self("rm", name, check=False)

    @contextlib.contextmanager
    def mounted(self, container: str) -> Iterator[Path]:
        """The container's root file system on the host (``buildah mount``), unmounted afterwards."""
        path = Path(self("mount", container).stdout.strip())
        try:
            yield path
        finally:
            self("umount", container, check=False)

    def remove_images(self, *names: str) -> None:
        for name in names:
            self("rmi", "--force", name, check=False)


def _requirements() -> list[str]:
    """What ``tfspec[runtime]`` depends on (pyproject.toml): the stand-in holds all of it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return sorted(project["dependencies"] + project["optional-dependencies"]["runtime"])


def _debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 ``URIs:`` or a ``deb`` line), else deb.debian.org."""
    for path in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        if not path.is_file():
            continue
        for line in path.read_text("utf-8", errors="replace").splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and "security" not in line:
                return next(w for w in words[1:] if "://" in w)
    return "http://deb.debian.org/debian"


def base_key() -> str:
    """A hash of what the stand-in base holds."""
    what = {"suite": DEBIAN_SUITE, "packages": DEBIAN_PACKAGES, "requirements": _requirements(), "recipe": RECIPE,
            "python": f"cp{sys.version_info.major}{sys.version_info.minor}"}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode("utf-8")).hexdigest()[:12]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def stand_in_base(buildah: Buildah, log=print) -> str:  # noqa: ANN001
    """The stand-in base image (built once, then found in the cache folder's image store)."""
    name = f"{BASE_REPOSITORY}:{base_key()}"
    with _locked(CACHE / "base.lock"):
        if buildah.image_exists(name):
            return name
        images = json.loads(buildah("images", "--json").stdout or "null") or []
        buildah.remove_images(*(i["id"] for i in images if any(n.startswith(BASE_REPOSITORY + ":")
                                                                for n in i.get("names") or [])))
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="tfspec-base-", dir=CACHE) as work:
            _build_base(buildah, Path(work), name, log)
        log(f"stand-in base {name} built in {time.monotonic() - started:.0f} s")
    return name


def _build_base(buildah: Buildah, work: Path, name: str, log) -> None:  # noqa: ANN001
    wheels = work / "wheels"
    log(f"pip download {len(_requirements())} requirements of tfspec[runtime] ...")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:", "--dest", str(wheels),
                    *_requirements()], check=True, timeout=1800)
    rootfs = work / "rootfs"
    log(f"debootstrap {DEBIAN_SUITE} ...")
    subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}", DEBIAN_SUITE,
                    str(rootfs), _debian_mirror()], check=True, timeout=1800, stdout=subprocess.DEVNULL)
    shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
    (rootfs / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True)
    with buildah.container("scratch") as container:
        with buildah.mounted(container) as mount:
            subprocess.run(["cp", "-a", f"{rootfs}/.", f"{mount}/"], check=True, timeout=900)
            shutil.copytree(wheels, mount / "tmp" / "wheels")
        shutil.rmtree(rootfs)
        log("installing the wheels offline inside ...")
        install = ("python3 -m pip install --quiet --no-index --no-deps --no-cache-dir --break-system-packages "
                   "/tmp/wheels/*.whl && rm -rf /tmp/wheels /usr/lib/python3*/EXTERNALLY-MANAGED "
                   "&& printf '[global]\\nno-index = true\\n' > /etc/pip.conf && python3 -m pip check")
        buildah("run", container, "--", "sh", "-c", install, timeout=1800)
        buildah("config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--env", "LANG=C.UTF-8", "--cmd", "python3", "--label", f"io.tfspec.test.base={base_key()}", container)
        buildah("commit", "--quiet", container, name, timeout=1800)


class Registry:
    """Debian's ``docker-registry`` serving a temporary folder on 127.0.0.1 (plain HTTP)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Registry":
        config = self.folder / "config.yml"
        (self.folder / "data").mkdir(parents=True)
        config.write_text(f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: "
                          f"{self.folder / 'data'}}}, delete: {{enabled: true}}}}\n"
                          f"http: {{addr: '{self.host}'}}\n", "utf-8")
        self.process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=open(self.folder / "registry.log", "wb"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return self
            time.sleep(0.2)
        self.__exit__()
        raise AssertionError("docker-registry did not start: " + (self.folder / "registry.log").read_text())

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(20)


# The upstream bases the generated Dockerfiles name (FROM), tagged onto the stand-in in the tests' store so
# that `tfspec images` builds the Dockerfiles unchanged (buildah then finds them locally, pulls nothing).
UPSTREAM_BASES = ("docker.io/tensorflow/tensorflow:2.21.0", "docker.io/tensorflow/serving:2.21.0")

# The pod's view inside `buildah run` (chroot isolation): the root file system remounted read-only (the
# pods' readOnlyRootFilesystem), then the command exec'd as the pod's user with no capabilities left
# (runAsUser/runAsGroup, capabilities dropped). CAP_SYS_ADMIN is granted for the remount only.
_POD_WRAPPER = ('mount -o remount,bind,ro / && exec setpriv --reuid "$0" --regid "$0" --clear-groups '
                '--inh-caps=-all --bounding-set=-all -- "$@"')


def run_as_pod(buildah: Buildah, container: str, command: list[str], *, uid: int, env: dict[str, str],
               volumes: dict[str, tuple[Path, bool]], log: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` (the exact words: ENTRYPOINT + CMD, or a pod's command) in ``container`` as a pod
    would run it: as ``uid``, root file system read-only, ``volumes`` (mount path → host folder, read-only?)
    mounted; the container shares the host's network (127.0.0.1). Output goes to ``log``."""
    args = ["buildah", "run", "--user", "0:0", "--cap-add", "CAP_SYS_ADMIN"]
    for name, value in env.items():
        args += ["--env", f"{name}={value}"]
    for mount, (host, read_only) in volumes.items():
        args += ["--volume", f"{host}:{mount}:{'ro' if read_only else 'rw'}"]
    args += [container, "--", "sh", "-c", _POD_WRAPPER, str(uid), *command]
    with open(log, "wb") as out:
        return subprocess.Popen(args, env=buildah.env, stdout=out, stderr=subprocess.STDOUT)
