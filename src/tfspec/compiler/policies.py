"""Policies: organisation rules as data — CEL expressions every spec must pass.

A policy file (named by the project file ``tfspec.yaml``) holds a list of rules::

    policies:
      - name: serving-autoscales            # shown in every message
        severity: error                     # error (exit 2) | warning (printed)
        each: targets                       # optional: judge every item of this list of the resolved spec...
        as: target                          # ...bound to this name (default: item)
        when: target.kind == "tf_serving"   # optional: only items where this holds
        rule: has(target.kubernetes) && has(target.kubernetes.autoscale)
        path: kubernetes                    # optional: the value judged, relative to the item (or the spec)
        message: every serving target autoscales

Each rule is a CEL expression (the language of Kubernetes' ValidatingAdmissionPolicy) that must give
``true``. Variables: ``spec`` (the resolved spec, defaults filled, unset values absent so ``has()`` works),
``env`` (the environment overlay's name, ``""`` without one), the item (with ``each``) and ``objects`` (the
rendered Kubernetes objects: the item's own with ``each: targets``, otherwise every target's).

A violation is reported at the file:line:col that set the judged value (the spec or the base it came
from), naming the policy and its message. A policy that does not compile, or cannot be evaluated, is an
error at its own line in the policy file, and so is one that costs more than Kubernetes allows a
ValidatingAdmissionPolicy (the cost budget of :mod:`.cel`). A policy's ``name`` and ``message`` are one line
each (a name of at most 63 characters, a message of at most 200): they are repeated in every violation.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from tfspec.base.errors import Diagnostic, SpecError, cap, format_path
from tfspec.spec.loader import KeyPath, SourceDocument

from .cel import (Budget, CelSyntaxError, CostLimitExceeded, charge, compile_expression, error_message, evaluate, is_bool,
                  show, to_cel)
from .cel_reads import Reads, project
from .manifest_objects import kubernetes_objects, read_objects
from .project import ProjectRef
from .resolve import ResolvedSpec
from .standard_files import load_source

__all__ = ["Policy", "load_policies", "check_policies", "parse_key_path"]

_KEYS = ("name", "severity", "each", "as", "when", "rule", "path", "message")
_REQUIRED = ("name", "rule", "message")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_MESSAGE_CHARACTERS = 200
_RESERVED = ("spec", "env", "objects")
_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)$")
_COMPILED: dict[tuple[str, str], Any] = {}
Rendered = Mapping[str, Mapping[str, str]] | Callable[[], Mapping[str, Mapping[str, str]]] | None


def parse_key_path(text: str) -> KeyPath | None:
    """``kubernetes.autoscale`` / ``targets[1].gates`` → a key path; None when malformed."""
    path: list[str | int] = []
    for segment in text.split("."):
        match = _SEGMENT.match(segment)
        if not match:
            return None
        path.append(match.group(1))
        path.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return tuple(path)


@dataclasses.dataclass(frozen=True)
class Policy:
    """One rule of a policy file, compiled."""

    name: str
    severity: str
    message: str
    rule: str
    when: str | None
    each: KeyPath | None
    variable: str
    path: KeyPath
    document: SourceDocument
    index: int
    program: Any = dataclasses.field(compare=False, repr=False)
    when_program: Any = dataclasses.field(compare=False, repr=False)

    def diagnostic(self, key: str, message: str, hint: str | None = None) -> Diagnostic:
        return self.document.diagnostic(("policies", self.index, key), f"policy {self.name}: {message}", hint)

    @property
    def location(self) -> str:
        line, _ = self.document.position(("policies", self.index))
        return f"{self.document.file}:{line}"


def load_policies(refs: tuple[ProjectRef, ...]) -> tuple[Policy, ...]:
    """Load, check and compile every policy of ``refs`` (raises :class:`SpecError` naming the policy file)."""
    policies: list[Policy] = []
    problems: list[Diagnostic] = []
    for ref in refs:
        try:
            document = load_source(ref.absolute, ref.display)
        except SpecError as error:
            problems.extend(error.diagnostics)
            continue
        policies.extend(_policies_of(document, problems))
    seen: dict[str, Policy] = {}
    for policy in policies:
        if policy.name in seen:
            problems.append(policy.diagnostic("name", f"a policy named {policy.name!r} is already defined at "
                                                      f"{seen[policy.name].location}"))
        seen.setdefault(policy.name, policy)
    if problems:
        raise SpecError(problems)
    return tuple(policies)


def _policies_of(document: SourceDocument, problems: list[Diagnostic]) -> list[Policy]:
    tree = document.tree
    if not isinstance(tree, dict) or set(tree) != {"policies"} or not isinstance(tree["policies"], list):
        problems.append(document.diagnostic((), "a policy file is a mapping with one key, 'policies', a list of rules"))
        return []
    out = []
    for index, entry in enumerate(tree["policies"]):
        where: KeyPath = ("policies", index)
        if not isinstance(entry, dict):
            problems.append(document.diagnostic(where, "a policy is a mapping with name, rule and message"))
            continue
        before = len(problems)
        for key in entry:
            if key not in _KEYS:
                close = difflib.get_close_matches(str(key), _KEYS, n=1)
                problems.append(document.diagnostic(where + (key,), f"unknown key {cap(str(key))!r} in a policy",
                                                    f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(_KEYS)))
        for key in _REQUIRED:
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                problems.append(document.diagnostic(where + ((key,) if key in entry else ()), f"a policy needs a '{key}' (text)"))
        if isinstance(entry.get("name"), str) and entry["name"].strip() and not _NAME.match(entry["name"]):
            problems.append(document.diagnostic(where + ("name",), f"policy name {cap(entry['name'])!r} is not a name",
                                                "letters, digits, '-', '_' and '.', at most 63 characters"))
        message = entry.get("message")
        if isinstance(message, str) and (len(message.strip()) > _MESSAGE_CHARACTERS or "\n" in message.strip()):
            problems.append(document.diagnostic(where + ("message",), f"a policy message is one line of at most "
                                                f"{_MESSAGE_CHARACTERS} characters (this one has {len(message):,})",
                                                "it is repeated in every violation"))
        for key in ("when", "each", "as", "path"):
            if key in entry and not isinstance(entry[key], str):
                problems.append(document.diagnostic(where + (key,), f"'{key}' must be text"))
        severity = entry.get("severity", "error")
        if severity not in ("error", "warning"):
            problems.append(document.diagnostic(where + ("severity",), f"severity must be error or warning, not "
                                                                       f"{cap(repr(severity))}"))
        variable = entry.get("as", "item")
        if isinstance(variable, str) and (not _IDENTIFIER.match(variable) or variable in _RESERVED):
            problems.append(document.diagnostic(where + ("as",), f"'as' must be a lower-case name other than "
                                                                 f"{', '.join(_RESERVED)}, not {cap(variable)!r}"))
        each = path = None
        for key in ("each", "path"):
            if isinstance(entry.get(key), str):
                parsed = parse_key_path(entry[key])
                if parsed is None:
                    problems.append(document.diagnostic(where + (key,), f"{cap(entry[key])!r} is not a key path like "
                                                                        "'kubernetes.autoscale' or 'targets[0]'"))
                elif key == "each":
                    each = parsed
                else:
                    path = parsed
        if len(problems) > before:
            continue
        program = _compile(document, where + ("rule",), entry["name"], entry["rule"], problems)
        when_program = _compile(document, where + ("when",), entry["name"], entry["when"], problems) if "when" in entry else None
        if program is None or ("when" in entry and when_program is None):
            continue
        out.append(Policy(entry["name"], severity, entry["message"].strip(), entry["rule"], entry.get("when"), each,
                          variable, path or (), document, index, program, when_program))
    return out


def _compile(document: SourceDocument, where: KeyPath, name: str, expression: str, problems: list[Diagnostic]) -> Any:
    key = (document.file, expression)
    if key in _COMPILED:
        return _COMPILED[key]
    try:
        program = compile_expression(expression)
    except CelSyntaxError as error:
        line, column = document.position(where)
        # the expression's own column, counted from the start of the value
        at = f" at column {error.column}" if error.column else ""
        problems.append(Diagnostic(document.file_of(where), line, column, format_path(where),
                                   f"policy {name}: the CEL expression does not compile{at}: {cap(str(error))}"))
        return None
    _COMPILED[key] = program
    return program


def _lookup(tree: Any, path: KeyPath) -> Any:
    for key in path:
        if isinstance(tree, dict) and isinstance(key, str) and key in tree:
            tree = tree[key]
        elif isinstance(tree, list) and isinstance(key, int) and key < len(tree):
            tree = tree[key]
        else:
            return None
    return tree


def check_policies(policies: tuple[Policy, ...], resolved: ResolvedSpec, rendered: Rendered = None) -> list[Diagnostic]:
    """Judge ``resolved`` by every policy: raises :class:`SpecError` on errors, returns the warnings.

    ``rendered``: the rendered files by target, or a function that renders them (called only when a rule
    needs the objects)."""
    if not policies:
        return []
    spec = resolved.spec.model_dump(mode="json", exclude_none=True)
    judge = _Judge(spec, resolved.environment or "", rendered)
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    for policy in policies:
        budget = Budget()  # Kubernetes gives each policy binding's evaluation of one object its own budget
        cases: list[tuple[KeyPath, Any, Any]] = []  # (where, the item, its objects' key)
        if policy.each is None:
            cases.append(((), None, None))
        else:
            items = _lookup(spec, policy.each)
            for i, item in enumerate(items if isinstance(items, list) else []):
                target = item.get("name") if policy.each == ("targets",) and isinstance(item, dict) else None
                cases.append((policy.each + (i,), item, target))
        for where, item, target in cases:
            try:
                passed = judge.passes(policy, where, item, target, budget)
            except _NotBool as problem:
                errors.append(policy.diagnostic(problem.key, f"the expression gave {cap(show(problem.value))}, "
                                                             "not true or false"))
                break
            except CostLimitExceeded as exceeded:
                errors.append(policy.diagnostic("rule", f"evaluating it for {format_path(where)} costs {exceeded} "
                                                        "(the limits Kubernetes sets for ValidatingAdmissionPolicy "
                                                        "CEL)",
                                                "nested .all/.exists over lists multiply: iterate once, or narrow "
                                                "the list with 'each' and 'when'"))
                break
            except Exception as error:  # noqa: BLE001  (CEL evaluation errors: a missing field, a type mismatch)
                errors.append(policy.diagnostic("rule", f"the rule could not be evaluated for "
                                                        f"{format_path(where)}: {cap(error_message(error))}"))
                break
            if passed:
                continue
            judged = where + policy.path
            label = "" if policy.severity == "error" else " (warning)"
            diagnostic = resolved.diagnostic(judged, f"policy {policy.name}{label}: {cap(policy.message, _MESSAGE_CHARACTERS)}",
                                             f"rule at {policy.location}")
            (errors if policy.severity == "error" else warnings).append(diagnostic)
    if errors:
        raise SpecError(errors, warnings)
    return warnings


# Verdicts by expression and the JSON of what it reads (:mod:`.cel_reads`): the same target in 500 specs, or a
# spec and its overlays, is judged once per process, and so is a rule that reads a few fields every spec shares.
# Each verdict keeps the cost units its evaluation spent, charged again to the policy's budget when it is reused,
# so that a reused verdict runs out of budget exactly where evaluating again would. ``None``: the expression
# names ``objects`` and could not be judged without them.
_VERDICTS: dict[tuple[Any, ...], tuple[bool | None, int]] = {}
_VERDICTS_LIMIT = 50_000
_ABSENT = "\x00absent"  # the key's text for a variable that is not bound


class _Unclear(Exception):
    """The cut-down evaluation did not give true or false: judge again with the whole values, for the exact message."""


class _Judge:
    """The values of one resolved spec and the memo of verdicts.

    Rendered objects are costly (a YAML parse of every manifest): a rule that mentions ``objects`` is first
    evaluated without them, and only when that fails (``env != "prod" || objects...`` needs them in prod
    only) are they rendered and parsed, once per target.
    """

    def __init__(self, spec: dict[str, Any], env: str, rendered: Rendered) -> None:
        self.spec, self.env, self._rendered = spec, env, rendered
        self._files: Mapping[str, Mapping[str, str]] | None = None
        self._objects: dict[str | None, list[dict[str, Any]]] = {}
        self._read_objects: dict[tuple[str | None, int], Any] = {}  # by target and id of the Reads (a program's)
        self._cel: dict[str, Any] = {}

    def _rendered_files(self) -> Mapping[str, Mapping[str, str]]:
        if self._files is None:
            self._files = (self._rendered() if callable(self._rendered) else self._rendered) or {}
        return self._files

    def _objects_of(self, target: str | None) -> list[dict[str, Any]]:
        if target not in self._objects:
            self._files = self._rendered_files()
            if target is not None:
                self._objects[target] = kubernetes_objects(self._files.get(target, {}))
            else:  # every target's, in order: each target's files parsed once
                self._objects[None] = [o for name in self._files for o in self._objects_of(name)]
        return self._objects[target]

    def _objects_read(self, target: str | None, reads: Reads) -> Any:
        """``project(self._objects_of(target), reads)``, building only what ``reads`` keeps of each object."""
        key = (target, id(reads))
        if key not in self._read_objects:
            files = self._rendered_files()
            if target is not None:
                self._read_objects[key] = read_objects(files.get(target, {}), reads)
            elif reads.whole or reads.fields or reads.each is None:  # the list kept whole
                self._read_objects[key] = project(self._objects_of(None), reads)
            else:  # every target's, in order
                self._read_objects[key] = [o for name in files for o in self._objects_read(name, reads)]
        return self._read_objects[key]

    def _cel_value(self, name: str, make: Any) -> Any:
        if name not in self._cel:
            self._cel[name] = to_cel(make())
        return self._cel[name]

    def passes(self, policy: Policy, where: KeyPath, item: Any, target: str | None, budget: Budget) -> bool:
        """True when ``when`` is false or ``rule`` is true (each evaluation within ``budget``)."""
        if policy.when_program is not None and not self._verdict(policy, "when", item, target, budget):
            return True
        return self._verdict(policy, "rule", item, target, budget)

    def _verdict(self, policy: Policy, which: str, item: Any, target: str | None, budget: Budget) -> bool:
        left = budget.left
        try:
            return self._cut_down_verdict(policy, which, item, target, budget)
        except _Unclear:
            budget.left = left
            return self._whole_verdict(policy, which, item, target, budget)

    def _cut_down_verdict(self, policy: Policy, which: str, item: Any, target: str | None, budget: Budget) -> bool:
        """The verdict over only what the expression reads, remembered by it."""
        expression = policy.rule if which == "rule" else (policy.when or "")
        program = policy.program if which == "rule" else policy.when_program
        reads = program.reads
        bound = {"spec": self.spec, "env": self.env}
        if item is not None:
            bound[policy.variable] = item
        seen = {name: project(bound[name], reads[name]) for name in sorted(reads) if name in bound}
        key: tuple[Any, ...] = (policy.variable, expression, target is None, tuple(
            (name, json.dumps(seen[name], sort_keys=True, separators=(",", ":")) if name in seen else _ABSENT)
            for name in sorted(reads) if name != "objects"))
        needs_objects = "objects" in expression
        verdict = self._remembered(key, budget, lambda: _outcome(
            program, {name: to_cel(value) for name, value in seen.items()}, budget, clear=not needs_objects))
        if verdict is not None:
            return verdict
        if not needs_objects:
            raise _Unclear
        self._rendered_files()  # rendered as before, even for a rule that names objects without reading them
        seen_objects = self._objects_read(target, reads["objects"]) if "objects" in reads else None
        key = key + (json.dumps(seen_objects, sort_keys=True, separators=(",", ":")) if "objects" in reads else _ABSENT,)
        activation = {name: to_cel(value) for name, value in seen.items()}
        if "objects" in reads:
            activation["objects"] = to_cel(seen_objects)
        verdict = self._remembered(key, budget, lambda: _outcome(program, activation, budget, clear=True))
        if verdict is None:
            raise _Unclear
        return verdict

    @staticmethod
    def _remembered(key: tuple[Any, ...], budget: Budget, judge: Callable[[], bool | None]) -> bool | None:
        if key in _VERDICTS:
            verdict, units = _VERDICTS[key]
            charge(budget, units)
            return verdict
        left = budget.left
        verdict = judge()
        if len(_VERDICTS) >= _VERDICTS_LIMIT:
            _VERDICTS.clear()
        _VERDICTS[key] = (verdict, left - budget.left)
        return verdict

    def _whole_verdict(self, policy: Policy, which: str, item: Any, target: str | None, budget: Budget) -> bool:
        """The verdict over the whole values, not remembered: the path of an evaluation that fails, whose
        message names what it saw."""
        program = policy.program if which == "rule" else policy.when_program
        expression = policy.rule if which == "rule" else (policy.when or "")
        objects = f"objects:{target}" if target is not None else "objects"
        activation: dict[str, Any] = {"env": to_cel(self.env)}
        if "spec" in expression:
            activation["spec"] = self._cel_value("spec", lambda: self.spec)
        if item is not None:
            activation[policy.variable] = to_cel(item)
        if "objects" in expression:
            try:  # without the objects first: a verdict that did not need them holds whatever they are
                return _truth(policy, which, evaluate(program, activation, budget))
            except CostLimitExceeded:
                raise
            except Exception:  # noqa: BLE001  (it needed them: evaluate again with them, below)
                pass
            activation["objects"] = self._cel_value(objects, lambda: self._objects_of(target))
        return _truth(policy, which, evaluate(program, activation, budget))


def _outcome(program: Any, activation: dict[str, Any], budget: Budget, *, clear: bool) -> bool | None:
    """True or false; None when the evaluation gave anything else (an error, another value). ``clear``: such
    an outcome is final, judged again over the whole values (:class:`_Unclear`) and never remembered."""
    try:
        value = evaluate(program, activation, budget)
    except CostLimitExceeded:
        raise
    except Exception:  # noqa: BLE001  (a CEL evaluation error)
        value = None
    if is_bool(value):
        return bool(value)
    if clear:
        raise _Unclear
    return None


class _NotBool(Exception):
    def __init__(self, key: str, value: Any) -> None:
        self.key, self.value = key, value


def _truth(policy: Policy, key: str, value: Any) -> bool:
    if is_bool(value):
        return bool(value)
    if isinstance(value, Exception):
        raise value
    raise _NotBool(key, value)

