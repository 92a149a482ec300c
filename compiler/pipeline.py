"""The whole compiler as one function: load → parse → resolve → validate → inputs → render → plan.

Reads the spec file, the process environment for ``${VAR}`` and, in the ``inputs`` stage, the files the
spec names (data, SavedModels, builder modules, teacher specs). The only thing it writes is that stage's
stat memo (``.tfspec/input-digests.json`` beside the spec, a cache that may be deleted at any time).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path

from tfspec.plan import PLAN_FILE, Plan
from tfspec.spec.document import Spec
from tfspec.spec.errors import Diagnostic, SpecError
from tfspec.spec.loader import SourceDocument, load_yaml, load_yaml_text

from .inputs import InputDigests, gather_inputs
from .naming import placed_files, plan_root
from .parse import parse_model, parse_spec
from .plan import build_plan
from .resolve import ResolvedSpec, apply_environment, expand_variables, with_defaults
from .targets import render_targets
from .validate import validate

__all__ = ["CompileResult", "compile_spec", "compile_document", "resolve_document", "placed_files", "plan_root",
           "PLAN_FILE"]


@dataclasses.dataclass(frozen=True)
class CompileResult:
    """What compiling one spec gave: either a plan and files, or diagnostics.

    Attributes:
        path: the spec file.
        resolved: the resolved spec (None when it did not get that far).
        plan: the step DAG (None on errors).
        files: every output file, ``plan.json`` included, relative to the output folder (``manifest.json``
            is added by the writer).
        diagnostics: every problem found; empty when the spec is valid.
        inputs: the content digests of the files the spec's steps read (None when it did not get that far).
    """

    path: str
    resolved: ResolvedSpec | None
    plan: Plan | None
    files: dict[str, str]
    diagnostics: tuple[Diagnostic, ...]
    inputs: InputDigests | None = None

    @property
    def ok(self) -> bool:
        return not self.diagnostics

    def placed(self, out_dir: str | Path) -> "CompileResult":
        """This result as written to ``out_dir``: the plan records the spec's folder relative to it."""
        if self.plan is None:
            return self
        plan = self.plan.model_copy(update={"root": plan_root(self.path, out_dir)})
        return dataclasses.replace(self, plan=plan, files={**self.files, PLAN_FILE: plan.to_text()})

    def raise_for_errors(self) -> "CompileResult":
        if self.diagnostics:
            raise SpecError(list(self.diagnostics))
        return self


def resolve_document(document: SourceDocument, env: str | None = None,
                     environ: Mapping[str, str] | None = None) -> ResolvedSpec:
    """load's output → a validated :class:`ResolvedSpec` (raises :class:`SpecError`).

    Without ``env``, every environment overlay is checked too (a broken overlay is an error of the spec
    even when it is not selected), its problems reported with the overlay's own positions.
    """
    document = expand_variables(document, environ)
    spec = parse_spec(document)  # the base spec must be valid on its own, overlays or not
    if env is not None:
        merged = apply_environment(document, env)
        return validate(with_defaults(parse_model(Spec, merged.tree, merged), merged, env))
    resolved = validate(with_defaults(spec, document, None))
    problems: list[Diagnostic] = []
    for name in spec.environments:
        try:
            merged = apply_environment(document, name)
            validate(with_defaults(parse_model(Spec, merged.tree, merged), merged, name))
        except SpecError as error:
            problems.extend(dataclasses.replace(d, message=f"in environment {name!r}: {d.message}")
                            for d in error.diagnostics)
    if problems:
        raise SpecError(problems)
    return resolved


def compile_document(document: SourceDocument, env: str | None = None,
                     environ: Mapping[str, str] | None = None) -> CompileResult:
    try:
        resolved = resolve_document(document, env, environ)
        inputs = gather_inputs(resolved, compile_teacher=_compile_teacher)
        target_files = render_targets(resolved)
        plan = build_plan(resolved, {name: {path: _sha256(text) for path, text in files.items()}
                                     for name, files in target_files.items()}, inputs,
                          spec_file=Path(document.file).name)
    except SpecError as error:
        return CompileResult(document.file, None, None, {}, tuple(error.diagnostics))
    files: dict[str, str] = {PLAN_FILE: plan.to_text()}
    for target_files_of_one in target_files.values():
        files.update(target_files_of_one)
    return CompileResult(document.file, resolved, plan, files, (), inputs)


def _compile_teacher(path: Path) -> CompileResult:
    return compile_spec(path)  # looked up when called, so a test can count teacher compilations


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compile_spec(path: str | Path, env: str | None = None, environ: Mapping[str, str] | None = None,
                 text: str | None = None) -> CompileResult:
    """Compile one spec file. Never raises :class:`SpecError`: problems are in ``diagnostics``."""
    try:
        document = load_yaml_text(text, str(path)) if text is not None else load_yaml(path)
    except SpecError as error:
        return CompileResult(str(path), None, None, {}, tuple(error.diagnostics))
    return compile_document(document, env, environ)
