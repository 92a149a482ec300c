"""CEL engines on tfspec's policies: cel-python (what tfspec uses, with its cost meter) vs cel-expr-python.

Evaluates every rule and ``when`` of the example policies (examples/gitops/standards/policies.yaml) on the
example specs (examples/gitops/specs, with and without the ``prod`` overlay; ``objects`` is every rendered
Kubernetes object of the spec), compares the verdicts (true, false, or an evaluation error) and times one
evaluation with each engine, programs compiled once. cel-expr-python is not a dependency of tfspec:

    .venv/bin/pip install cel-expr-python && .venv/bin/python benchmarks/bench_cel_engines.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _cases() -> list[tuple[str, str, str, dict[str, Any]]]:
    from tfspec.compiler.pipeline import compile_spec
    from tfspec.compiler.policies import _kubernetes_objects

    policies = yaml.safe_load((ROOT / "examples/gitops/standards/policies.yaml").read_text("utf-8"))["policies"]
    cases = []
    for spec_path in sorted((ROOT / "examples/gitops/specs").glob("*.yaml")):
        for env in (None, "prod"):
            result = compile_spec(spec_path, env=env)
            if result.resolved is None:
                continue
            spec = result.resolved.spec.model_dump(mode="json", exclude_none=True)
            objects = _kubernetes_objects(result.files)
            for policy in policies:
                items = spec["targets"] if policy.get("each") == "targets" else [None]
                for item in items:
                    activation = {"env": env or "", "spec": spec, "objects": objects}
                    if item is not None:
                        activation[policy.get("as", "item")] = item
                    for which in ("when", "rule"):
                        if which in policy:
                            cases.append((policy["name"], which, policy[which], activation))
    return cases


def main() -> None:
    try:
        from cel_expr_python import cel
    except ImportError:
        sys.exit("install cel-expr-python first: .venv/bin/pip install cel-expr-python")
    from tfspec.compiler import cel as tfspec_cel

    cases = _cases()
    env = cel.NewEnv(variables={"env": cel.Type.STRING, "spec": cel.Type.DYN, "objects": cel.Type.DYN,
                                "target": cel.Type.DYN, "item": cel.Type.DYN})
    python_programs = {expr: tfspec_cel.compile_expression(expr) for _, _, expr, _ in cases}
    cpp_programs = {expr: env.compile(expr) for _, _, expr, _ in cases}
    converted = [(expr, {k: tfspec_cel.to_cel(v) for k, v in act.items()}) for _, _, expr, act in cases]

    def python_verdict(expr: str, values: dict[str, Any]) -> Any:
        try:
            value = tfspec_cel.evaluate(python_programs[expr], values, tfspec_cel.Budget())
        except Exception:  # noqa: BLE001  (an evaluation error is a verdict here)
            return "error"
        return bool(value) if tfspec_cel.is_bool(value) else "error"

    def cpp_verdict(expr: str, activation: dict[str, Any]) -> Any:
        try:
            value = cpp_programs[expr].eval(data=activation)
        except Exception:  # noqa: BLE001
            return "error"
        return value.plain_value() if value.type() == cel.Type.BOOL else "error"

    differ = 0
    for (name, which, expr, activation), (_, values) in zip(cases, converted):
        a, b = python_verdict(expr, values), cpp_verdict(expr, activation)
        if a != b:
            differ += 1
            print(f"verdicts differ: policy {name} {which}: cel-python {a}, cel-expr-python {b}")
    print(f"{len(cases)} evaluations, {differ} with different verdicts; load {os.getloadavg()[0]:.2f}")

    start = time.perf_counter()
    for _, _, expr, activation in cases:
        {k: tfspec_cel.to_cel(v) for k, v in activation.items()}
    convert = (time.perf_counter() - start) / len(cases)
    start = time.perf_counter()
    for expr, values in converted:
        python_verdict(expr, values)
    python = (time.perf_counter() - start) / len(cases)
    start = time.perf_counter()
    for _, _, expr, activation in cases:
        cpp_verdict(expr, activation)
    cpp = (time.perf_counter() - start) / len(cases)
    print(f"cel-python, metered:           {python * 1000:7.3f} ms per evaluation "
          f"(+ {convert * 1000:.3f} ms converting spec, item and objects to CEL values)")
    print(f"cel-expr-python (no cost meter): {cpp * 1000:5.3f} ms per evaluation, from plain JSON values")
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
