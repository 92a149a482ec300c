"""``tfspec images``: build a spec's images with buildah or docker, tag them with the references the
manifests name, and push them.

Each image is built from a temporary context holding its rendered folder (the Dockerfile and what it
copies), plus what ``tfspec build`` cannot write: tfspec's wheel (training and step images, under
``wheels/``) and the SavedModel ``tfspec run`` made (serving images, under ``models/<name>/<version>/``,
taken from the dist only when the dist's plan made it with the fingerprint the image's tag covers).
Every prerequisite is checked before the first build; temporary contexts are removed whatever happens, and
an interrupted builder gets SIGTERM (buildah and docker remove their build containers on it).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path

from tfspec.compiler.images import MODELS_DIR, WHEELS_DIR, ImageBuild
from tfspec.compiler.targets.gpu_cluster import WHEEL
from tfspec.base.versions import TFSPEC_VERSION
from tfspec.base.errors import EXIT_ERROR, TfspecError

__all__ = ["BUILDERS", "ImagesError", "BuiltImage", "find_builder", "check_saved_models", "tfspec_wheel",
           "build_images", "write_contexts", "push_reference"]

BUILDERS = ("buildah", "docker")  # the first one on PATH builds, unless --builder names one
_TAIL_LINES = 40  # of a failed builder's output


class ImagesError(TfspecError):
    """A missing builder, wheel or SavedModel, or a failed build or push: one line, exit 2."""

    exit_code = EXIT_ERROR


@dataclasses.dataclass(frozen=True)
class BuiltImage:
    """What happened to one image: built (its local id), pushed (where, and the manifest digest), or skipped."""

    name: str
    reference: str
    image_id: str | None = None
    pushed: str | None = None
    digest: str | None = None
    skipped: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return dataclasses.asdict(self)


def find_builder(name: str | None) -> str:
    """The builder's executable: ``name``, or the first of :data:`BUILDERS` on PATH."""
    for candidate in (name,) if name else BUILDERS:
        found = shutil.which(candidate)
        if found:
            return found
    wanted = name or " or ".join(BUILDERS)
    raise ImagesError(f"tfspec images needs {wanted} on PATH, and it is not there "
                      "(apt-get install buildah, or install Docker)")


def check_saved_models(builds: Sequence[ImageBuild], plan_fingerprints: dict[str, str], dist: Path,
                       spec: str) -> None:
    """Every serving image's SavedModel is in ``dist``, made by the plan the image's tag was computed from."""
    for build in builds:
        if build.saved_model is None or build.pinned:
            continue
        folder = dist / build.saved_model
        hint = f"`tfspec run {spec}` makes it; --dist-dir names another dist"
        if not (folder / "saved_model.pb").is_file():
            raise ImagesError(f"image {build.name}: no SavedModel at {folder} ({hint})")
        try:
            steps = json.loads((dist / "plan.json").read_text("utf-8"))["steps"]
            made = next(s["fingerprint"] for s in steps if s["id"] == build.bundle_step)
        except (OSError, ValueError, KeyError, StopIteration, TypeError):
            made = None
        assert build.bundle_step is not None
        if made != plan_fingerprints[build.bundle_step]:
            raise ImagesError(f"image {build.name}: {folder} was made from another version of the spec "
                              f"({dist / 'plan.json'} names another {build.bundle_step} step; {hint})")


def tfspec_wheel(given: Path | None, scratch: Path, log: Callable[[str], None]) -> Path:
    """tfspec's wheel for the images that install it: ``given``, else the wheel this tfspec was installed
    from (a local wheel file pip recorded), else one built from the source folder it was installed from,
    else ``pip download tfspec==<version>``."""
    if given is not None:
        if given.name != WHEEL:
            raise ImagesError(f"--wheel {given}: the Dockerfiles install {WHEEL} (this tfspec's version)")
        return given
    source = _installed_from()
    commands: list[list[str]] = []
    if source is not None and source.suffix == ".whl" and source.name == WHEEL and source.is_file():
        return source
    if source is not None and source.is_dir():
        commands.append([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(scratch),
                         str(source)])
    commands.append([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                     "--dest", str(scratch), f"tfspec=={TFSPEC_VERSION}"])
    for command in commands:
        log(f"wheel: {' '.join(command[1:])}")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0 and (scratch / WHEEL).is_file():
            return scratch / WHEEL
    raise ImagesError(f"the training and step images install tfspec's wheel, and none was found for this "
                      f"tfspec {TFSPEC_VERSION}: pass --wheel {WHEEL} (python -m pip wheel --no-deps <tfspec source>)")


def _installed_from() -> Path | None:
    """The local file or folder pip installed tfspec from (PEP 610 ``direct_url.json``), if any."""
    try:
        text = importlib.metadata.distribution("tfspec").read_text("direct_url.json")
        url = json.loads(text)["url"] if text else ""
    except (importlib.metadata.PackageNotFoundError, ValueError, KeyError):
        return None
    if not url.startswith("file://"):
        return None
    return Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))


def write_contexts(builds: Sequence[ImageBuild], files: dict[str, str], into: Path, *, wheel: Path | None,
                   dist: Path, log: Callable[[str], None]) -> list[BuiltImage]:
    """Each image's build context in ``into/<name>/``, nothing built (kaniko or another builder builds them).
    ``into`` must not exist yet or be empty: nothing of the user's is overwritten."""
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise ImagesError(f"--context-dir {into}: not an empty folder (the contexts are written into a new one)")
    out = []
    for build in builds:
        if build.pinned:
            out.append(BuiltImage(build.name, build.reference, skipped="pinned by digest: built elsewhere"))
            continue
        _context(build, files, into / build.name, wheel, dist)
        log(f"context {build.name}: {into / build.name} -> {build.reference}")
        out.append(BuiltImage(build.name, build.reference))
    return out


def _context(build: ImageBuild, files: dict[str, str], into: Path, wheel: Path | None, dist: Path) -> Path:
    """The build context: the rendered folder, the wheel, the SavedModel version."""
    prefix = build.folder + "/"
    for path, text in files.items():
        if path.startswith(prefix):
            target = into / path[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, "utf-8")
    if build.wheel:
        assert wheel is not None
        (into / WHEELS_DIR).mkdir()
        shutil.copyfile(wheel, into / WHEELS_DIR / WHEEL)
    if build.saved_model is not None:
        relative = Path(build.saved_model).relative_to(build.folder)
        assert relative.parts[0] == MODELS_DIR
        shutil.copytree(dist / build.saved_model, into / relative)
    return into


def _run(command: list[str], what: str) -> str:
    """Run a builder command; its output on failure (the last lines) and one error line. SIGTERM, not
    SIGKILL, on Ctrl-C: the builder removes its build container."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate()
    except BaseException:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
    if process.returncode != 0:
        print("\n".join(output.splitlines()[-_TAIL_LINES:]), file=sys.stderr, flush=True)
        raise ImagesError(f"{what} failed: {Path(command[0]).name} exited {process.returncode} (its output is above)")
    return output


def push_reference(reference: str, registry: str | None) -> str:
    """Where ``reference`` is pushed: itself, or ``<registry>/<image name>:<tag>`` with ``--registry``."""
    if registry is None:
        return reference
    repository, _, tag = reference.rpartition(":")
    return f"{registry.rstrip('/')}/{repository.rsplit('/', 1)[-1]}:{tag}"


def _image_id(builder: str, reference: str) -> str:
    if Path(builder).name == "docker":
        return _run([builder, "image", "inspect", "--format", "{{.Id}}", reference], f"inspect {reference}").strip()
    return _run([builder, "inspect", "--type", "image", "--format", "{{.FromImageID}}", reference],
                f"inspect {reference}").strip()


def _push(builder: str, reference: str, destination: str, tls_verify: bool, scratch: Path) -> str:
    """Push; the manifest digest the registry stored (``sha256:...``)."""
    if Path(builder).name == "docker":
        if destination != reference:
            _run([builder, "tag", reference, destination], f"tag {destination}")
        output = _run([builder, "push", destination], f"push {destination}")
        digests = [word for line in output.splitlines() if "digest: " in line
                   for word in line.split() if word.startswith("sha256:")]
        if not digests:
            raise ImagesError(f"push {destination}: docker printed no digest")
        return digests[-1]
    digest_file = scratch / "digest"
    _run([builder, "push", "--quiet", "--digestfile", str(digest_file), *([] if tls_verify else ["--tls-verify=false"]),
          reference, f"docker://{destination}"], f"push {destination}")
    return digest_file.read_text("utf-8").strip()


def build_images(builds: Sequence[ImageBuild], files: dict[str, str], *, builder: str, dist: Path,
                 wheel: Path | None, push: bool, registry: str | None, tls_verify: bool,
                 log: Callable[[str], None]) -> list[BuiltImage]:
    """Build (and push) each image; the checks of :func:`check_saved_models` and the wheel come first."""
    out: list[BuiltImage] = []
    docker = Path(builder).name == "docker"
    for build in builds:
        if build.pinned:
            out.append(BuiltImage(build.name, build.reference, skipped="pinned by digest: built elsewhere"))
            log(f"skipped {build.name}: {build.reference} is pinned by digest")
            continue
        with tempfile.TemporaryDirectory(prefix="tfspec-images-") as scratch:
            context = _context(build, files, Path(scratch) / "context", wheel, dist)
            # buildah: the base image pulled only when missing (docker's default); isolation from BUILDAH_ISOLATION
            command = ([builder, "build", "--tag", build.reference, str(context)] if docker else
                       [builder, "bud", "--pull=false", "--tag", build.reference, str(context)])
            log(f"building {build.name}: {build.reference}")
            _run(command, f"building image {build.name}")
            image_id = _image_id(builder, build.reference)
            pushed = digest = None
            if push:
                pushed = push_reference(build.reference, registry)
                digest = _push(builder, build.reference, pushed, tls_verify, Path(scratch))
                log(f"pushed {build.name}: {pushed.rpartition(':')[0]}@{digest}")
            out.append(BuiltImage(build.name, build.reference, image_id, pushed, digest))
    return out
