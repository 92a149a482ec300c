"""CEL for policies: compile an expression, evaluate it within a cost budget. The one module that knows which CEL
implementation tfspec uses (cel-python); :mod:`.policies` sees only :func:`compile_expression`,
:func:`evaluate`, :func:`to_cel`, :func:`is_bool` and the errors.

Cost, as Kubernetes bounds the CEL of a ValidatingAdmissionPolicy (k8s.io/apiserver ``pkg/apis/cel/config.go``):

* :data:`PER_CALL_LIMIT` = ``PerCallLimit`` = 1,000,000 units for one evaluation of one expression (the ``rule``
  or the ``when`` of one policy for one item);
* :data:`POLICY_BUDGET` = ``RuntimeCELCostBudget`` = 10,000,000 units for all the evaluations of one policy on
  one spec (Kubernetes: of one policy binding on one object; every ``each`` item and the ``when`` count).

The units are cel-go's runtime cost (``interpreter/runtimecost.go`` and ``common/cost.go``), counted here while
cel-python walks the expression: 1 for each identifier, field selection, index and function or operator call,
0 for a constant, 10 to create a list and 30 a map, 1 per iteration of a macro (``all``, ``exists``, ``map``,
``filter``, ``exists_one``) besides its body's own cost, and for string work the size terms of cel-go:
``startsWith``/``endsWith``/``+``/``==`` on strings 0.1 per character, ``contains`` 0.1 x 0.1 per character
pair, ``matches`` 0.1 per character x 0.25 per pattern character, ``in`` a list its length. (cel-go charges a
presence test in ``has()`` 0 in Kubernetes; here the tested field counts 1.)

Before evaluating, the worst-case cost is estimated from the actual sizes of the lists a macro iterates (the
product of nested ``all``/``exists`` ranges times their bodies, as cel-go's estimator does with sizes from a
schema): an expression estimated past :data:`PER_CALL_LIMIT` is refused without being run. This matters here:
cel-python is about a thousand times slower than cel-go, so where Kubernetes reaches the per-call limit in about
0.1 s, counting at run time alone would let a runaway rule run for minutes before it is stopped (six nested
``.all`` over 10 labels: estimated 3.4 million units, refused at once; counted at run time, stopped after about
3 minutes on the 2-core test machine).

A regular expression that does not compile is an evaluation error with RE2's reason; RE2's own log lines are
switched off (they would be printed before the diagnostic).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["PER_CALL_LIMIT", "POLICY_BUDGET", "CelSyntaxError", "CostLimitExceeded", "Budget", "Program",
           "compile_expression", "evaluate", "charge", "to_cel", "is_bool", "show", "error_message"]

PER_CALL_LIMIT = 1_000_000
"""Kubernetes' ``PerCallLimit`` (k8s.io/apiserver pkg/apis/cel/config.go): cost units of one evaluation."""
POLICY_BUDGET = 10_000_000
"""Kubernetes' ``RuntimeCELCostBudget``: cost units of every evaluation of one policy on one spec."""

_LIST_CREATE, _MAP_CREATE = 10, 30  # cel-go common/cost.go ListCreateBaseCost, MapCreateBaseCost
_STRING_FACTOR, _REGEX_FACTOR = 0.1, 0.25  # StringTraversalCostFactor, RegexStringLengthCostFactor
_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one", "reduce", "min"})
_FREE = frozenset({"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication", "unary",
                   "member", "primary", "literal", "exprlist", "fieldinits", "mapinits", "paren_expr", "dot_ident",
                   "dot_ident_arg"})


class CelSyntaxError(Exception):
    """An expression that does not compile; ``column`` is where, when known."""

    def __init__(self, message: str, column: int | None) -> None:
        super().__init__(message)
        self.column = column


class CostLimitExceeded(Exception):
    """An evaluation would spend, or spent, more than a budget; the text says which and how much."""

    def __init__(self, text: str, units: int) -> None:
        super().__init__(text)
        self.units = units


class Budget:
    """The cost units left to one policy on one spec (:data:`POLICY_BUDGET` to begin with)."""

    def __init__(self, units: int = POLICY_BUDGET) -> None:
        self.left = units


class Program:
    """A compiled expression."""

    def __init__(self, runner: Any) -> None:
        self._runner = runner
        self._reads: dict[str, Any] | None = None

    @property
    def reads(self) -> dict[str, Any]:
        """What it reads of each free variable (:func:`.cel_reads.reads_of`), found once."""
        if self._reads is None:
            from .cel_reads import reads_of

            self._reads = reads_of(self._runner.ast)
        return self._reads


def compile_expression(text: str) -> Program:
    """Compile ``text``; :class:`CelSyntaxError` when it does not."""
    import celpy

    environment = celpy.Environment()
    try:
        return Program(environment.program(environment.compile(text), functions={"matches": _matches}))
    except celpy.CELParseError as error:
        detail = (str(error).splitlines() or ["syntax error"])[0].strip()
        raise CelSyntaxError(detail, getattr(error, "column", None)) from None


def to_cel(value: Any) -> Any:
    """A JSON value (dicts, lists, strings, numbers, booleans) as a CEL value."""
    import celpy

    return celpy.json_to_cel(value)


def is_bool(value: Any) -> bool:
    import celpy

    return isinstance(value, celpy.celtypes.BoolType)


def show(value: Any) -> str:
    """A CEL value as JSON text (for messages; the caller cuts it)."""
    import json

    def plain(item: Any) -> Any:
        import celpy

        if isinstance(item, celpy.celtypes.BoolType):
            return bool(item)
        if isinstance(item, dict):
            return {str(k): plain(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [plain(v) for v in item]
        if isinstance(item, (str, int, float)) or item is None:
            return item
        return str(item)

    return json.dumps(plain(value), default=str)


def error_message(error: Exception) -> str:
    """The first line of what an evaluation error says (cel-python keeps it in ``args[0]``)."""
    args = getattr(error, "args", ())
    text = args[0] if args and isinstance(args[0], str) else (str(error) or type(error).__name__)
    return (text.splitlines() or [type(error).__name__])[0]


def evaluate(program: Program, activation: dict[str, Any], budget: Budget) -> Any:
    """The value of ``program`` with the variables of ``activation``; :class:`CostLimitExceeded` when this
    evaluation passes :data:`PER_CALL_LIMIT` or ``budget`` runs out (what it spent is taken from ``budget``).
    An evaluation error is returned or raised as cel-python does."""
    from celpy.evaluation import CELEvalError

    runner = program._runner
    estimated = _estimate(runner.ast, {name: [value] for name, value in activation.items()})
    if estimated > PER_CALL_LIMIT:
        raise CostLimitExceeded(f"an estimated {estimated:,} cost units, more than the {PER_CALL_LIMIT:,} of one "
                                "expression", estimated)
    meter = _Meter(budget)
    evaluator = _metered_evaluator_class()(runner.ast, runner.new_activation(), meter)
    try:
        value = evaluator.evaluate(activation)
    except CELEvalError as error:
        meter.check()  # a budget error swallowed on the way out still wins
        raise error from None
    meter.check()
    return value


def charge(budget: Budget, units: int) -> None:
    """Take ``units`` (what an evaluation spent) from ``budget``: :class:`CostLimitExceeded` when it runs out,
    as it would have during that evaluation."""
    meter = _Meter(budget)
    meter.budget.left -= units
    meter.check()


class _Meter:
    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.units = 0
        self.recent: dict[int, Any] = {}  # a tree node's latest value: an operator's operands, when it completes

    def charge(self, units: int) -> None:
        self.units += units
        self.budget.left -= units
        if self.units > PER_CALL_LIMIT or self.budget.left < 0:
            self.check()

    def check(self) -> None:
        if self.units > PER_CALL_LIMIT:
            raise CostLimitExceeded(f"more than the {PER_CALL_LIMIT:,} cost units of one expression", self.units)
        if self.budget.left < 0:
            raise CostLimitExceeded(f"more than the {POLICY_BUDGET:,} cost units of one policy on one spec",
                                    self.units)


def _size(value: Any) -> int:
    try:
        return len(value) if isinstance(value, (str, bytes, list, tuple, dict)) else 1
    except TypeError:
        return 1


def _string_cost(*sizes: int) -> int:
    return math.ceil(sum(sizes) * _STRING_FACTOR)


_PRIMARY_COST = {"ident": 1, "list_lit": _LIST_CREATE, "map_lit": _MAP_CREATE}
_EVALUATOR: Any = None


def _metered_evaluator_class() -> Any:
    """cel-python's tree-walking evaluator, counting cost units as it visits each node (built on first use:
    only specs governed by policies import cel-python)."""
    global _EVALUATOR
    if _EVALUATOR is not None:
        return _EVALUATOR
    from celpy.evaluation import Evaluator

    class MeteredEvaluator(Evaluator):  # type: ignore[misc, valid-type]
        def __init__(self, ast: Any, activation: Any, meter: _Meter, iteration: bool = False) -> None:
            super().__init__(ast, activation)
            self.meter = meter
            self.iteration = iteration

        def sub_evaluator(self, ast: Any) -> Any:  # a macro's body: evaluated once per item
            return MeteredEvaluator(ast, self.activation, self.meter, iteration=True)

        def evaluate(self, context: Any = None) -> Any:
            if self.iteration:
                self.meter.charge(1)
            return super().evaluate(context)

        def _visit_tree(self, tree: Any) -> Any:
            meter = self.meter
            kind = tree.data
            value = super()._visit_tree(tree)
            meter.recent[id(tree)] = value
            if kind == "primary" and tree.children:
                # cel-python reads a variable, or builds a list or map literal, inside ``primary`` without
                # visiting that child: charge it here
                meter.charge(_PRIMARY_COST.get(getattr(tree.children[0], "data", ""), 0))
            elif kind not in _FREE and kind not in ("list_lit", "map_lit"):
                meter.charge(self._cost(tree, kind, value))
            elif len(tree.children) == 2 and kind in ("relation", "addition", "multiplication"):
                meter.charge(self._operator_cost(tree))
            return value

        def _operand(self, child: Any) -> Any:
            return self.meter.recent.get(id(child))

        def _operator_cost(self, tree: Any) -> int:
            """``left <op> right``: lark keeps the operator as the first child's name (``relation_in``)."""
            left, right = tree.children
            operator = getattr(left, "data", "")
            left_value, right_value = self._operand(left), self._operand(right)
            if operator == "relation_in":
                return max(1, _size(right_value))
            if isinstance(left_value, str) and isinstance(right_value, str):
                if operator == "addition_add":
                    return max(1, _string_cost(len(left_value), len(right_value)))
                return max(1, _string_cost(min(len(left_value), len(right_value))))
            return 1

        def _cost(self, tree: Any, kind: str, value: Any) -> int:
            if kind == "member_dot_arg":
                name = getattr(tree.children[1], "value", "")
                if name in _MACROS:
                    return 1
                receiver = self._operand(tree.children[0])
                argument = None
                if len(tree.children) > 2 and tree.children[2].children:
                    argument = self._operand(tree.children[2].children[0])
                if name in ("startsWith", "endsWith") and isinstance(receiver, str):
                    return max(1, _string_cost(len(receiver)))
                if name == "contains" and isinstance(receiver, str) and isinstance(argument, str):
                    return max(1, _string_cost(len(receiver)) * _string_cost(len(argument)))
                if name == "matches" and isinstance(receiver, str) and isinstance(argument, str):
                    return max(1, _string_cost(1 + len(receiver)) * math.ceil(len(argument) * _REGEX_FACTOR))
                return 1
            if kind == "ident_arg":
                name = getattr(tree.children[0], "value", "")
                return 0 if name in ("has", "dyn") else 1
            if kind in ("relation_in", "relation_lt", "relation_le", "relation_gt", "relation_ge", "relation_eq",
                        "relation_ne", "addition_add", "addition_sub", "multiplication_mul", "multiplication_div",
                        "multiplication_mod"):
                return 0  # the left operand of an operator: the operator is charged on its parent
            return 1  # ident, member_dot, member_index, unary_not, unary_neg, ...

    _EVALUATOR = MeteredEvaluator
    return _EVALUATOR


_CANDIDATES = 10_000  # values an iteration variable is known to range over, at most (enough for any spec)


def _estimate(tree: Any, env: dict[str, list[Any] | None]) -> int:
    """Worst-case cost units of ``tree``: 1 per node that costs (as :class:`_Meter` charges them), a macro its
    receiver plus, for each element of the largest list it may iterate, 1 and its body. ``env``: the values each
    variable may hold (an iteration variable: every element of its range); None where unknown."""
    from lark import Tree

    kind = tree.data
    children = [child for child in tree.children if isinstance(child, Tree)]
    if kind == "member_dot_arg" and getattr(tree.children[1], "value", "") in _MACROS and len(tree.children) > 2:
        receiver, arguments = tree.children[0], tree.children[2]
        ranges = _path_values(receiver, env)
        size = max((len(r) for r in ranges if isinstance(r, (list, dict))), default=1) if ranges else 1
        elements: list[Any] | None = None
        if ranges:
            elements = [e for r in ranges if isinstance(r, (list, dict)) for e in (r if isinstance(r, list) else r.keys())]
            elements = elements[:_CANDIDATES]
        parts = [child for child in arguments.children if isinstance(child, Tree)]
        names = [token.value for token in parts[0].scan_values(lambda v: getattr(v, "type", "") == "IDENT")] \
            if len(parts) >= 2 else []
        inner = dict(env)
        if names:
            inner[names[0]] = elements
        body = sum(_estimate(part, inner) for part in parts[1:])
        return _estimate(receiver, env) + size * (1 + body)
    own = 0 if kind in _FREE or kind.startswith(("relation_", "addition_", "multiplication_")) else 1
    if kind == "list_lit":
        own = _LIST_CREATE
    elif kind == "map_lit":
        own = _MAP_CREATE
    elif len(children) == 2 and kind in ("relation", "addition", "multiplication"):
        own = 1
    return own + sum(_estimate(child, env) for child in children)


def _path_values(tree: Any, env: dict[str, list[Any] | None]) -> list[Any] | None:
    """The values a selection chain (``spec.data.labels``, ``o.spec.containers``) may have, from ``env``; None
    when the expression computes something else (then its size is unknown)."""
    from lark import Tree

    while isinstance(tree, Tree) and tree.data in _FREE and len(tree.children) == 1 and isinstance(tree.children[0], Tree):
        tree = tree.children[0]
    if not isinstance(tree, Tree):
        return None
    if tree.data == "ident":
        return env.get(str(tree.children[0]))
    if tree.data == "member_dot" and len(tree.children) == 2:
        base = _path_values(tree.children[0], env)
        field = str(tree.children[1])
        if base is None:
            return None
        return [value[field] for value in base if isinstance(value, dict) and field in value][:_CANDIDATES]
    return None


def _matches(text: Any, pattern: Any) -> Any:
    """``matches()`` with RE2 silent: a bad pattern is an evaluation error carrying RE2's reason."""
    import celpy
    import re2
    from celpy.evaluation import CELEvalError

    options = re2.Options()
    options.log_errors = False  # RE2 would write its own error line to stderr (through absl)
    try:
        compiled = re2.compile(str(pattern), options)
    except re2.error as error:
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) \
            else str(error)
        return CELEvalError(f"invalid regular expression: {reason}", re2.error, error.args)
    return celpy.celtypes.BoolType(compiled.search(str(text)) is not None)
