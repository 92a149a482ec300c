"""Output folders: their ``manifest.json``, and which folders tfspec may replace or delete (only its own
earlier output of the same spec).

Every output folder tfspec writes (``build``'s ``build/<name>/``, ``run``'s ``dist/<name>/``, ``search``'s
``dist/<name>-search/``) carries a ``manifest.json`` that lists its files and records what produced it::

    "produced_by": {"kind": "build", "spec": "digits", "environment": null}

Before a folder is replaced (or pruned), :func:`check_replaceable` requires that it is missing, empty, or
such an output of the same kind and spec (an output folder is tfspec's: a file added to it goes with the
next build, as in any build folder). A manifest written before ``produced_by`` existed
(``manifest_version`` 1) counts only when it lists every file of the folder: nothing else says the folder
is tfspec's. Whatever the folder holds, it must not be or contain the current folder, the project root (the
folder of ``tfspec.yaml``) or a spec: ``--out .`` would otherwise swap the user's project away.

A step cache (``--cache-dir``) is a folder of entries named by fingerprint: it is marked with a
``CACHEDIR.TAG`` file (the Cache Directory Tagging Specification, https://bford.info/cachedir/, which
backup tools honour) and :func:`check_cache_folder` accepts a missing or empty folder, a tagged one, or
one that holds only what a step cache holds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import TfspecError, cap

__all__ = ["MANIFEST", "MANIFEST_VERSION", "CACHE_TAG", "CACHE_TAG_TEXT", "OutputPathError", "Producer",
           "Protected", "check_output_path", "check_protected", "check_replaceable", "check_replaceable_file",
           "check_cache_folder",
           "files_below", "manifest_json", "manifest_record", "manifest_text", "owned_output", "protected_paths",
           "read_manifest", "resolve_protected", "with_manifest"]

MANIFEST = "manifest.json"
MANIFEST_VERSION = 2
"""2: ``produced_by`` records the kind of output and the spec (1 had only ``files``)."""
CACHE_TAG = "CACHEDIR.TAG"
CACHE_TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
                  "# This file is a cache directory tag created by tfspec (its step cache).\n"
                  "# For information about cache directory tags, see: https://bford.info/cachedir/\n")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_CACHE_NAMES = re.compile(r"checkpoints|workertemp_\d+|logs")


class OutputPathError(TfspecError):
    """A generated path would leave the output folder, or the output folder is unusable."""


@dataclasses.dataclass(frozen=True)
class Producer:
    """What made an output folder, as its ``manifest.json`` records it.

    Attributes:
        kind: ``build`` (``tfspec build`` and ``watch``), ``dist`` (``tfspec run``) or ``search``.
        spec: the spec's ``name``.
        environment: the overlay it was built with, if any.
    """

    kind: str
    spec: str
    environment: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "kind": self.kind, "spec": self.spec}


def manifest_json(entries: dict[str, str], producer: Producer) -> str:
    """``manifest.json`` from ``{path: sha256}``: the files, sorted, and what produced them."""
    return json.dumps({"files": dict(sorted(entries.items())), "manifest_version": MANIFEST_VERSION,
                       "produced_by": producer.to_json()}, indent=2, sort_keys=True) + "\n"


def manifest_text(files: dict[str, str], producer: Producer) -> str:
    """``manifest.json``: every file with its sha256 (the manifest itself excluded) and ``producer``."""
    return manifest_json({path: hashlib.sha256(text.encode("utf-8")).hexdigest() for path, text in files.items()
                          if path != MANIFEST}, producer)


def with_manifest(files: dict[str, str], producer: Producer) -> dict[str, str]:
    return {**files, MANIFEST: manifest_text(files, producer)}


def check_output_path(path: str) -> None:
    parts = Path(path).parts
    if not path or Path(path).is_absolute() or ".." in parts or "\\" in path or "\x00" in path:
        raise OutputPathError(f"refusing to write outside the output folder: {path!r}")


def read_manifest(out_dir: Path) -> dict[str, str] | None:
    try:
        return json.loads((out_dir / MANIFEST).read_text("utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


Protected = tuple[str | Path, str]
"""A path no output folder may be or contain, and how to name it in the refusal (``the spec deploy.yaml``)."""


def protected_paths(specs: Iterable[str | Path] = (), project_files: Iterable[str | None] = ()) -> list[Protected]:
    """The current folder, each spec file and each project root (the folder of a ``tfspec.yaml``)."""
    out: list[Protected] = [(os.getcwd(), "the current folder")]
    out.extend((spec, f"the spec {spec}") for spec in specs)
    out.extend((os.path.dirname(project), f"the project root {os.path.dirname(project)} (the folder of tfspec.yaml)")
               for project in sorted({p for p in project_files if p}))
    return out


class RealPath(str):
    """A path already resolved by ``os.path.realpath`` (:func:`resolve_protected`): not resolved again."""


def resolve_protected(protected: Iterable[Protected]) -> list[Protected]:
    """``protected`` with each path resolved once, for a caller that checks many output folders against the same
    paths: a folder build of N specs would otherwise resolve every protected path (every spec among them) for
    each of its N outputs, N x N ``realpath`` calls (a lstat per path component each)."""
    return [(RealPath(os.path.realpath(path)), name) for path, name in protected]


def files_below(folder: str | Path) -> set[str]:
    """Every entry below ``folder`` that is not a folder (files, links, pipes), relative and '/'-separated;
    symbolic links to folders are not followed."""
    found: set[str] = set()
    for parent, dirs, names in os.walk(folder):
        relative = os.path.relpath(parent, folder)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        found.update(prefix + name for name in names)
        found.update(prefix + name for name in dirs if os.path.islink(os.path.join(parent, name)))
    return found


def _read_json(path: str | Path) -> Any:
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read(64 * 1024 * 1024))
    except (OSError, ValueError, RecursionError):
        return None


def manifest_record(folder: str | Path) -> dict[str, Any] | None:
    """The parsed ``manifest.json`` of ``folder`` when it is a tfspec manifest (``files`` and
    ``manifest_version``), else None."""
    data = _read_json(os.path.join(folder, MANIFEST))
    if not isinstance(data, dict) or "manifest_version" not in data or not isinstance(data.get("files"), dict):
        return None
    return data


def owned_output(folder: str | Path, kind: str | None = None) -> Producer | None:
    """What produced ``folder`` when it is a tfspec output folder (and, with ``kind``, of that kind); None
    otherwise. A manifest without ``produced_by`` (tfspec before manifest version 2) counts only when it
    lists every file the folder holds, and gives a producer with an empty ``spec``."""
    manifest = manifest_record(folder)
    if manifest is None:
        return None
    record = manifest.get("produced_by")
    if record is None:
        return None if _unlisted(folder, manifest) else Producer(kind or "", "")
    if not isinstance(record, dict) or not isinstance(record.get("spec"), str) or not isinstance(record.get("kind"), str):
        return None
    producer = Producer(record["kind"], record["spec"], record.get("environment") if isinstance(record.get("environment"), str) else None)
    return producer if kind is None or producer.kind == kind else None


def _unlisted(folder: str | Path, manifest: dict[str, Any]) -> set[str]:
    return files_below(folder) - set(manifest["files"]) - {MANIFEST}


def check_protected(folder: Path, protected: Iterable[Protected], option: str) -> None:
    real = os.path.realpath(folder)
    for path, name in protected:
        other = path if isinstance(path, RealPath) else os.path.realpath(path)
        if other == real:
            raise OutputPathError(f"{option} {folder} is {name}: refusing to replace it")
        if other.startswith(real.rstrip(os.sep) + os.sep):
            raise OutputPathError(f"{option} {folder} contains {name}: refusing to replace it (choose an output "
                                  "folder of its own, such as the default)")


def check_replaceable(folder: str | Path, producer: Producer, protected: Iterable[Protected] = (), *,
                      option: str = "output folder") -> None:
    """Raise :class:`OutputPathError` unless ``folder`` may be replaced by ``producer``'s new output.

    ``option`` names the folder in the message (``--out``, ``--dist-dir``). Allowed: a missing or empty folder,
    or an earlier output of the same kind and spec (any environment); a folder with an older manifest (no
    ``produced_by``) when the manifest lists every file in it.
    """
    folder = Path(folder)
    if folder.is_symlink():
        raise OutputPathError(f"{option} {folder} is a symbolic link: give the folder it points to")
    check_protected(folder, protected, option)
    if not os.path.lexists(folder):
        return
    if not folder.is_dir():
        raise OutputPathError(f"{option} {folder} is a file, not a folder")
    present = files_below(folder)
    if not present:
        return
    manifest = manifest_record(folder)
    if manifest is None:
        raise OutputPathError(f"{option} {folder} is not empty and holds no tfspec output (no manifest.json): "
                              "refusing to replace it (choose another folder, or move its files away)")
    record = manifest.get("produced_by")
    if record is not None:
        if not isinstance(record, dict) or record.get("kind") != producer.kind or record.get("spec") != producer.spec:
            found = record if isinstance(record, dict) else {}
            raise OutputPathError(f"{option} {folder} holds the {_show(found.get('kind'))} output of spec "
                                  f"{_show(found.get('spec'))}, not of {producer.spec!r}: refusing to replace it "
                                  "(choose another folder, or delete it first)")
        return
    unlisted = sorted(present - set(manifest["files"]) - {MANIFEST})
    if unlisted:
        more = f" and {len(unlisted) - 1} more" if len(unlisted) > 1 else ""
        raise OutputPathError(f"{option} {folder} holds {_show(unlisted[0])}{more}, which tfspec did not write "
                              "(not in its manifest.json): refusing to replace the folder (move the file away)")


def check_replaceable_file(path: str | Path, option: str, what: str, is_ours: Callable[[bytes], bool]) -> None:
    """A single output file (``fleet --html``, ``diff --out``) may be written only where nothing of the user's
    is lost: the path is missing, an empty regular file (``$GITHUB_STEP_SUMMARY`` before a step writes it), or
    an earlier file of the same kind, told by ``is_ours`` from its first 2 KiB. Anything else (``--out
    README.md``, a folder, a link) is refused with one line."""
    path = Path(path)
    if not os.path.lexists(path):
        return
    if path.is_file() and not path.is_symlink():
        try:
            with open(path, "rb") as handle:
                head = handle.read(2048)
        except OSError:
            head = None
        if head is not None and (not head or is_ours(head)):
            return
    raise OutputPathError(f"{option} {path} exists and is not {what}: refusing to replace it (give a new file name)")


def _show(value: Any) -> str:
    return repr(cap(value)) if isinstance(value, str) else "an unknown"


def check_cache_folder(folder: str | Path, protected: Iterable[Protected] = (), *, option: str = "--cache-dir") -> None:
    """Raise :class:`OutputPathError` unless ``folder`` is a step cache (tagged, or holding only cache
    entries), empty or missing: tfspec writes and deletes entries in it."""
    folder = Path(folder)
    check_protected(folder, protected, option)
    if not os.path.lexists(folder):
        return
    if not folder.is_dir():
        raise OutputPathError(f"{option} {folder} is a file, not a folder")
    names = os.listdir(folder)
    if not names or CACHE_TAG in names and _is_our_tag(folder / CACHE_TAG):
        return
    foreign = sorted(n for n in names if not (_FINGERPRINT.fullmatch(n) or _CACHE_NAMES.fullmatch(n)
                                               or (n.startswith(".") and n.endswith(".tmp"))))
    if foreign:
        raise OutputPathError(f"{option} {folder} is not a tfspec step cache (it holds {_show(foreign[0])}): "
                              "refusing to write into it (give an empty or new folder)")


def _is_our_tag(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(200).startswith(CACHE_TAG_TEXT.split("\n", 1)[0].encode())
    except OSError:
        return False
