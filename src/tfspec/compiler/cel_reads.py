"""What a compiled CEL expression can read of each variable, found in its syntax tree, and the values cut down to it.

A policy's verdict depends only on the parts of its variables that the expression reads. Across a folder of
similar specs most rules read a few fields (``target.kind``, ``target.gpus``, ``has(target.gates.x)``) that
many specs share, so a verdict remembered by what the rule reads is reused where one remembered by the
whole spec never is, and only those parts need converting to CEL values.

The analysis is conservative: it may keep more than the expression reads, never less.

* A selection chain ``spec.training.epochs`` keeps ``training.epochs`` of ``spec``, whole, and nothing else of
  ``spec`` that no other chain names; ``has(target.gates.x)`` keeps ``gates.x`` (present or absent).
* A variable or sub-tree used any other way — alone (``target``), compared whole, passed to a function
  (``size(spec.targets)``), indexed (``spec.targets[0]``, any index), the receiver of a method
  (``c.image.startsWith(...)``) or of ``map``/``filter`` (they return elements) — is kept whole. Inside
  ``map``/``filter`` the iteration variable is taken for a free variable too (it may only add reads).
* ``all``, ``exists`` and ``exists_one`` return a truth value: their list receiver keeps every element
  (the same length, so the cost estimate and the meter see the same sizes), each cut down to what the
  body reads of the iteration variable. A map receiver (they iterate its keys) is kept whole.
* An iteration variable shadows a variable of the same name inside its body, as in CEL; ``.name`` (the
  root-scoped name) is the variable itself, kept whole.

Cut-down values keep every list's length and every read value as it is, so an evaluation over them takes the
same path, spends the same cost units and gives the same verdict as one over the whole values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Reads", "reads_of", "project"]

_TRUTH_MACROS = frozenset({"all", "exists", "exists_one"})
# grammar nodes that only wrap their one child (cel-python's cel.lark)
_WRAPPERS = frozenset({"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary",
                       "member", "primary", "paren_expr"})


@dataclasses.dataclass
class Reads:
    """What is read of one value: all of it, some of its fields, and/or some of every element of a list."""

    whole: bool = False
    fields: dict[str, Reads] = dataclasses.field(default_factory=dict)
    each: Reads | None = None

    def merge(self, other: Reads) -> None:
        self.whole = self.whole or other.whole
        for name, reads in other.fields.items():
            self.fields.setdefault(name, Reads()).merge(reads)
        if other.each is not None:
            if self.each is None:
                self.each = Reads()
            self.each.merge(other.each)


def project(value: Any, reads: Reads) -> Any:
    """``value`` cut down to ``reads`` (kept whole wherever the shape is not the one the reads expect)."""
    if reads.whole or (reads.fields and reads.each is not None):
        return value
    if reads.each is not None:
        return [project(item, reads.each) for item in value] if isinstance(value, list) else value
    if reads.fields:
        if not isinstance(value, dict):
            return value
        return {name: project(value[name], inner) for name, inner in reads.fields.items() if name in value}
    return value  # never produced by the analysis: keep it all


def reads_of(tree: Any) -> dict[str, Reads]:
    """What the expression ``tree`` (cel-python's lark tree) reads of each free variable, by name."""
    roots: dict[str, Reads] = {}
    _visit(tree, roots, {})
    return roots


def _chain(tree: Any) -> tuple[str, list[str]] | None:
    """``a.b.c`` (or ``(a).b``) → ("a", ["b", "c"]); None when ``tree`` is not a plain selection chain."""
    from lark import Tree

    fields: list[str] = []
    while isinstance(tree, Tree):
        kind = tree.data
        if kind in _WRAPPERS and len(tree.children) == 1:
            tree = tree.children[0]
        elif kind == "member_dot" and len(tree.children) == 2:
            fields.append(str(tree.children[1]))
            tree = tree.children[0]
        elif kind == "ident" and len(tree.children) == 1:
            return str(tree.children[0]), fields[::-1]
        else:
            return None
    return None


def _record(roots: dict[str, Reads], scope: dict[str, Reads], name: str, fields: list[str], leaf: Reads) -> None:
    node = scope[name] if name in scope else roots.setdefault(name, Reads())
    for field in fields:
        node = node.fields.setdefault(field, Reads())
    node.merge(leaf)


def _visit(tree: Any, roots: dict[str, Reads], scope: dict[str, Reads]) -> None:
    from lark import Tree

    if not isinstance(tree, Tree):
        return
    if tree.data == "dot_ident" and tree.children:
        # ``.name``: the variable itself, never an iteration variable of the same name: whole
        roots.setdefault(str(tree.children[0]), Reads()).whole = True
        return
    chain = _chain(tree)
    if chain is not None:
        _record(roots, scope, chain[0], chain[1], Reads(whole=True))
        return
    if tree.data == "member_dot_arg" and len(tree.children) == 3:
        receiver, name, arguments = tree.children
        parts = [child for child in getattr(arguments, "children", ()) if isinstance(child, Tree)]
        variable = _chain(parts[0]) if len(parts) == 2 else None
        receiver_chain = _chain(receiver)
        if str(name) in _TRUTH_MACROS and variable is not None and not variable[1] and receiver_chain is not None:
            element = Reads()
            _visit(parts[1], roots, {**scope, variable[0]: element})
            _record(roots, scope, receiver_chain[0], receiver_chain[1], Reads(each=element))
            return
    for child in tree.children:
        _visit(child, roots, scope)
