"""The up-to-date fast path of ``tfspec build SPEC``: skip compiling when the output is what it would write.

A build of one spec file records, in a user cache file named after the spec's and the output root's
absolute paths (``$XDG_CACHE_HOME/tfspec/builds/<sha256>.json``, beside the Jinja bytecode cache, so a
build leaves nothing else beside its output), the spec's
input key (:func:`tfspec.io.batch.input_key`: sha256 of the spec's bytes, the ``-e`` overlay, the values of
the ``${VAR}`` variables it mentions, the tfspec version and a fingerprint of the source of the spec
models, the plan, the compiler and the templates) and the sha256 of the ``manifest.json`` it wrote with
the size and mtime of every output file.

The next ``tfspec build`` of that spec reads the spec's bytes and that entry *before* importing the spec
models: when the key matches and the output folder still holds exactly the recorded files, nothing is
compiled or written (the output is byte-identical to what the build would write) and the command prints
what it prints after writing. Anything else — no entry, another key, a changed, missing or extra file —
takes the full path. ``--check`` (CI's guard) trusts the entry only when, besides, every output file has
the sha256 its ``manifest.json`` lists (:func:`tfspec.io.batch.output_intact`), so a file edited by hand is
reported stale even with its size and mtime restored.

Specs that read files (data, SavedModels, builder packages, teachers: the plan holds their content
digests) are never recorded: their output depends on more than the key covers, so they always compile.
This module imports no spec model: that is its point.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from tfspec.compiler.naming import dist_name
from tfspec.spec.loader import MAX_FILE_BYTES, decode_spec_bytes

from tfspec.compiler.project import find_project_file

from .batch import (_cache_hit, build_producer, _dep_variables, _load_cache, _output_stats, _read_text, _save_cache, _sha256,
                    files_below, input_key, output_intact)
from tfspec.base.outputs import MANIFEST, manifest_text

__all__ = ["UpToDate", "cached_build", "read_spec_bytes", "record_build"]

DEFAULT_OUT_ROOT = Path("build")


class UpToDate:
    """An output folder that is already what building the spec would write."""

    def __init__(self, out_dir: Path, files: list[str]) -> None:
        self.out_dir = out_dir
        self.files = files
        """The output files, ``manifest.json`` excluded (what ``build --json`` lists)."""


def _out_root(out: Path | None) -> Path:
    return out.parent if out is not None else DEFAULT_OUT_ROOT


def _record_path(spec: str, out_root: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = hashlib.sha256(f"{os.path.abspath(spec)}\0{os.path.abspath(out_root)}".encode()).hexdigest()
    return base / "tfspec" / "builds" / f"{name}.json"


def read_spec_bytes(spec: str) -> bytes | None:
    """The spec file's bytes, read once: what is compiled is what is hashed. None when it cannot be read
    or is too large for a spec (the compiler then reads it itself and reports why)."""
    try:
        with open(spec, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_FILE_BYTES else None


def _key(data: bytes, env: str | None, environ: Mapping[str, str]) -> str:
    return input_key(decode_spec_bytes(data), env, environ)


def cached_build(data: bytes, spec: str, env: str | None, out: Path | None,
                 environ: Mapping[str, str] | None = None, *, contents: bool = False) -> UpToDate | None:
    """The recorded output of ``spec`` (whose bytes are ``data``) when it is up to date, else None.
    ``contents``: also prove every output file's bytes against the manifest (``--check``)."""
    environ = os.environ if environ is None else environ
    out_root = _out_root(out)
    entry = _load_cache(_record_path(spec, out_root)).get(os.path.abspath(spec))
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("out"), str):
        return None
    # the folder this command would write: --out, or build/<name>[-<env>] (the name is the recorded one,
    # and the key below proves the spec, so its name, is unchanged)
    expected = out.name if out is not None else dist_name(entry["name"], env)
    if entry["out"] != expected or not _cache_hit(entry, _key(data, env, environ), out_root, spec, environ):
        return None
    out_dir = out if out is not None else out_root / expected
    if files_below(out_dir) != set(entry["stats"]):
        return None
    if contents and not output_intact(out_dir, entry):
        return None
    return UpToDate(out_dir, sorted(name for name in entry["stats"] if name != MANIFEST))


def record_build(data: bytes, spec: str, env: str | None, out: Path | None, out_dir: Path,
                 files: Mapping[str, str], *, name: str, name_position: tuple[int, int], cacheable: bool,
                 deps: tuple[str, ...] = (), environ: Mapping[str, str] | None = None) -> None:
    """Record what compiling ``data`` (the bytes of ``spec``) just wrote to ``out_dir`` (``files``, the
    manifest excluded); ``deps`` are the other files the compile read (base specs, project and policy files,
    teacher specs: :func:`tfspec.io.batch.referenced_specs`).

    ``cacheable`` False (the spec reads files) drops any entry instead. A cache that cannot be written is
    only a cache: the build has succeeded either way.
    """
    environ = os.environ if environ is None else environ
    out_root = _out_root(out)
    cache_path = _record_path(spec, out_root)
    entries = _load_cache(cache_path)
    key_path = os.path.abspath(spec)
    complete = {**files, MANIFEST: manifest_text(dict(files), build_producer(name, env))}
    stats = _output_stats(out_dir, complete) if cacheable else None
    if stats is None:
        if entries.pop(key_path, None) is not None:
            _save_quietly(cache_path, entries)
        return
    entries[key_path] = {
        "key": _key(data, env, environ),
        "name": name,
        "name_position": list(name_position),
        "out": out_dir.name,
        "deps": {dep: _sha256(_read_text(Path(dep)) or "") for dep in deps},
        "project": find_project_file(spec),
        "variables": _dep_variables(deps, environ),
        "manifest_sha256": _sha256(complete[MANIFEST]),
        "stats": stats,
    }
    _save_quietly(cache_path, entries)


def _save_quietly(path: Path, entries: dict) -> None:
    try:
        _save_cache(path, entries)
    except OSError:
        pass
