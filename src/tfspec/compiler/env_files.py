"""Environment overlays kept in their own file: ``<spec stem>.<env>.env.yaml`` beside the spec.

``tfspec build deploy.yaml -e searched`` uses ``environments.searched`` of the spec when it has one, and
otherwise the file ``deploy.searched.env.yaml`` (what ``tfspec search`` writes for review and commit). The
file holds what an inline overlay would (``model:``, ``training:``, ``compression:``, ``targets:``, ...) and
goes through the same merge and validation; problems in it are reported at its own lines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from tfspec.base.errors import SpecError
from tfspec.spec.loader import SourceDocument, load_yaml

from .resolve import check_environment_name

__all__ = ["environment_file", "with_environment_file"]

_LINE_OFFSET = 100_000_000  # larger than any spec file's line count (specs are at most 256 KiB)


def environment_file(spec_file: str, env: str) -> Path:
    path = Path(spec_file)
    return path.with_name(f"{path.stem}.{env}.env.yaml")


def with_environment_file(document: SourceDocument, env: str | None
                          ) -> tuple[SourceDocument, Callable[[SpecError], SpecError]]:
    """The document with the overlay file of ``env`` grafted in as ``environments.<env>`` (when the spec
    does not define that environment and the file exists), and a function that points diagnostics whose
    position lies in the file back at it."""
    check_environment_name(document, env)  # before the name becomes part of a file name
    tree = document.tree
    inline = tree.get("environments") if isinstance(tree, dict) else None
    path = environment_file(document.file, env) if env else None
    if (env is None or path is None or not isinstance(tree, dict)
            or (isinstance(inline, dict) and env in inline) or not path.is_file()):
        return document, lambda error: error
    overlay = load_yaml(path)
    grafted = dict(tree)
    grafted["environments"] = {**(inline if isinstance(inline, dict) else {}), env: overlay.tree}
    positions = dict(document.positions)
    for key, (line, column) in overlay.positions.items():
        positions[("environments", env, *key)] = (line + _LINE_OFFSET, column)

    def relocate(error: SpecError) -> SpecError:
        return SpecError([
            dataclasses.replace(d, file=str(path), line=d.line - _LINE_OFFSET) if d.line > _LINE_OFFSET else d
            for d in error.diagnostics])

    return dataclasses.replace(document, tree=grafted, positions=positions), relocate
