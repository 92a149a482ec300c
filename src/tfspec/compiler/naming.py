"""Names derived from the spec that several outputs share."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["dist_name", "object_name", "plan_root", "placed_files"]


def dist_name(name: str, environment: str | None) -> str:
    """``<name>``, or ``<name>-<environment>`` with an overlay: the folder of its build and dist output."""
    return f"{name}-{environment}" if environment else name


def object_name(spec_name: str, target_name: str) -> str:
    """``<spec name>-<target name>``: the Kubernetes objects of a target."""
    return f"{spec_name}-{target_name}"


def plan_root(spec_file: str | Path, out_dir: str | Path) -> str:
    """The spec's folder relative to the output folder: the ``root`` a written plan records."""
    return Path(os.path.relpath(Path(spec_file).absolute().parent, Path(out_dir).absolute())).as_posix()


def placed_files(files: Mapping[str, str], spec_file: str | Path, out_dir: str | Path) -> dict[str, str]:
    """``files`` with ``plan.json`` recording its root for ``out_dir`` (where they are about to be written).

    The root is no part of any fingerprint, so placing a plan never changes what runs. Plain JSON, no
    plan types: folder builds call this in the parent process, which stays light.
    """
    from tfspec.plan import PLAN_FILE

    text, root = files[PLAN_FILE], plan_root(spec_file, out_dir)
    if text.startswith(_UNPLACED):
        # As Plan.to_text writes a plan without a root (sorted keys: "root" is the first): the one line changes
        # in place, the same bytes as parsing and re-encoding the whole plan (json's indented encoder is pure
        # Python, and a folder build places every plan in its one parent process)
        return {**files, PLAN_FILE: '{\n  "root": ' + json.dumps(root) + ",\n" + text[len(_UNPLACED):]}
    plan = json.loads(text)
    plan["root"] = root
    return {**files, PLAN_FILE: json.dumps(plan, indent=2, sort_keys=True) + "\n"}


_UNPLACED = '{\n  "root": null,\n'
