"""The whole compiler as one function: load → standards → parse → resolve → validate → inputs → served
signature → render → policies → plan.

Reads the spec file, its project file, base specs and policy files (the ``standards`` stage), the process
environment for ``${VAR}`` and, in the ``inputs`` stage, the files the spec names (data, SavedModels, builder modules, teacher specs). The only thing it writes is that stage's
stat memo (``.tfspec/input-digests.json`` beside the spec, a cache that may be deleted at any time).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Mapping
from pathlib import Path

from tfspec.plan import PLAN_FILE, Plan
from tfspec.spec.document import Spec
from tfspec.base.errors import Diagnostic, SpecError
from tfspec.spec.loader import SourceDocument, load_yaml, load_yaml_bytes, load_yaml_text

from .env_files import with_environment_file
from .bases import apply_standards
from .data_files import check_data_file
from .inputs import InputDigests, gather_inputs
from .naming import placed_files, plan_root
from .parse import parse_model, parse_spec
from .plan import build_plan, with_rendered_files
from .search import check_search
from .served_signature import with_served_signature
from .policies import Policy, check_policies, load_policies
from .resolve import ResolvedSpec, apply_environment, expand_variables, with_defaults
from .targets import render_targets, target_defaults, target_warnings
from .validate import validate
from .workflow import render_workflow

__all__ = ["CompileResult", "compile_spec", "compile_document", "resolve_document", "resolve_expanded",
           "served_fingerprints",
           "placed_files", "plan_root", "PLAN_FILE"]


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
        warnings: build warnings of the targets (a deprecated operator) and policy warnings (severity
            ``warning``): printed, they do not fail the build.
    """

    path: str
    resolved: ResolvedSpec | None
    plan: Plan | None
    files: dict[str, str]
    diagnostics: tuple[Diagnostic, ...]
    inputs: InputDigests | None = None
    warnings: tuple[Diagnostic, ...] = ()

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
                     environ: Mapping[str, str] | None = None,
                     overlays: dict[str, ResolvedSpec] | None = None) -> ResolvedSpec:
    """load's output → a validated :class:`ResolvedSpec` (raises :class:`SpecError`).

    Without ``env``, every environment overlay is checked too (a broken overlay is an error of the spec
    even when it is not selected), its problems reported with the overlay's own positions; ``overlays``, when
    given, receives each overlay's resolved spec by name (what resolving with ``env=name`` gives).
    """
    document, relocate = with_environment_file(document, env)  # -e NAME from <stem>.NAME.env.yaml
    try:
        document = expand_variables(document, environ)
        spec = parse_spec(document)  # the base spec must be valid on its own, overlays or not
        if spec.search is not None:
            base = validate(with_defaults(spec, document, None, target_defaults=target_defaults))
            search_problems = check_search(document, spec.search, list(base.spec.targets), resolve_expanded)
            if search_problems:
                raise SpecError(search_problems)
        return resolve_expanded(document, env, spec, overlays)
    except SpecError as error:
        raise relocate(error) from None


def resolve_expanded(document: SourceDocument, env: str | None, spec: Spec | None = None,
                     overlays: dict[str, ResolvedSpec] | None = None) -> ResolvedSpec:
    """:func:`resolve_document` after variable expansion (search trials re-resolve an expanded tree)."""
    spec = spec if spec is not None else parse_spec(document)
    if env is not None:
        merged = apply_environment(document, env)
        return validate(with_defaults(parse_model(Spec, merged.tree, merged), merged, env, target_defaults=target_defaults))
    resolved = validate(with_defaults(spec, document, None, target_defaults=target_defaults))
    problems: list[Diagnostic] = []
    for name in spec.environments:
        try:
            merged = apply_environment(document, name)
            overlay = validate(with_defaults(parse_model(Spec, merged.tree, merged), merged, name,
                                             target_defaults=target_defaults))
            if overlays is not None:
                overlays[name] = overlay
        except SpecError as error:
            problems.extend(dataclasses.replace(d, message=f"in environment {name!r}: {d.message}")
                            for d in error.diagnostics)
    if problems:
        raise SpecError(problems)
    return resolved


def compile_document(document: SourceDocument, env: str | None = None,
                     environ: Mapping[str, str] | None = None) -> CompileResult:
    warnings: list[Diagnostic] = []  # kept when a later stage fails: reported beside its errors
    try:
        standards = apply_standards(document)
        policies = load_policies(standards.policies)
        overlays: dict[str, ResolvedSpec] = {}  # validated once here, judged by the policies below
        resolved = resolve_document(standards.document, env, environ, overlays)
        resolved = dataclasses.replace(resolved, sources=standards.sources)
        warnings += target_warnings(resolved)
        inputs = gather_inputs(resolved, compile_teacher=_compile_teacher)
        # a csv's header, label values and cells, an npz's arrays, against the spec (text labels become its classes)
        resolved = check_data_file(resolved, inputs.data_facts)
        resolved = with_served_signature(resolved)  # a SavedModel served as it is: its own keys
        # The served content's fingerprints (image tags follow them) do not depend on the rendered files.
        plan = build_plan(resolved, None, inputs, spec_file=Path(document.file).name)
        target_files = render_targets(resolved, served_fingerprints(plan))
        warnings += check_policies(policies, resolved, target_files)
        if env is None and policies:
            warnings += _check_environments(policies, standards.document, environ, overlays)
        plan = with_rendered_files(plan, {name: {path: _sha256(text) for path, text in files.items()}
                                          for name, files in target_files.items()})
    except SpecError as error:
        return CompileResult(document.file, None, None, {}, tuple(error.diagnostics),
                             warnings=tuple(sorted(set(warnings) | set(error.warnings))))
    files: dict[str, str] = {PLAN_FILE: plan.to_text()}
    for target_files_of_one in target_files.values():
        files.update(target_files_of_one)
    files.update(render_workflow(resolved, plan))  # from the finished plan: no render step lists these
    return CompileResult(document.file, resolved, plan, files, (), inputs, tuple(sorted(set(warnings))))


def _check_environments(policies: tuple[Policy, ...], document: SourceDocument,
                        environ: Mapping[str, str] | None, overlays: Mapping[str, ResolvedSpec]) -> list[Diagnostic]:
    """Policies judged under each environment overlay too (``env == "prod"`` rules need one); ``overlays``:
    those already resolved (the same as resolving the document with ``env``), by name."""
    tree = document.tree
    names = sorted(tree.get("environments") or {}) if isinstance(tree, dict) else []
    warnings: list[Diagnostic] = []
    errors: list[Diagnostic] = []
    for name in names:
        overlay = overlays[name] if name in overlays else resolve_document(document, name, environ)
        resolved = with_served_signature(overlay)
        try:
            found = check_policies(policies, resolved, functools.partial(render_targets, resolved))
        except SpecError as error:
            errors.extend(dataclasses.replace(d, message=f"in environment {name!r}: {d.message}") for d in error.diagnostics)
            continue
        warnings.extend(dataclasses.replace(d, message=f"in environment {name!r}: {d.message}") for d in found)
    if errors:
        raise SpecError(errors)
    return warnings


def _compile_teacher(path: Path) -> CompileResult:
    return compile_spec(path)  # looked up when called, so a test can count teacher compilations


def served_fingerprints(plan: Plan) -> dict[str, str]:
    """Per target, the fingerprint of its ``bundle`` step: what a serving image or a model store holds."""
    return {step.target: step.fingerprint for step in plan.steps if step.kind == "bundle" and step.target}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compile_spec(path: str | Path, env: str | None = None, environ: Mapping[str, str] | None = None,
                 text: str | None = None, data: bytes | None = None) -> CompileResult:
    """Compile one spec file (or its ``text``, or its bytes ``data``, already read by the caller).

    Never raises :class:`SpecError`: problems are in ``diagnostics``."""
    try:
        if text is not None:
            document = load_yaml_text(text, str(path))
        else:
            document = load_yaml_bytes(data, str(path)) if data is not None else load_yaml(path)
    except SpecError as error:
        return CompileResult(str(path), None, None, {}, tuple(error.diagnostics))
    return compile_document(document, env, environ)
