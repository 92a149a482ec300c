"""Every int and float field of the spec is strict, finite and bounded (the shared types of spec/base.py)."""

from __future__ import annotations

import types
import typing
from typing import Any, Union, get_args, get_origin

import annotated_types
import pydantic
import pytest
from pydantic import AllowInfNan, BaseModel, Strict
from pydantic.fields import FieldInfo

from tfspec.spec import Spec
from tfspec.spec.base import FiniteFloat, PositiveInt, Seed, StrictInt


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    pending = [root]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.append(model)
        for field in model.model_fields.values():
            pending.extend(leaf for leaf, _ in _leaves(field.annotation, list(field.metadata))
                           if isinstance(leaf, type) and issubclass(leaf, BaseModel))
    return seen


def _flatten(metadata: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in metadata:
        out.extend(_flatten(list(item.metadata)) if isinstance(item, FieldInfo) else [item])
    return out


def _leaves(annotation: Any, metadata: list[Any]) -> list[tuple[Any, list[Any]]]:
    """Every concrete type inside ``annotation`` with the constraints that apply to it."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = get_args(annotation)
        return _leaves(inner, _flatten(extra) + metadata)
    if origin in (Union, types.UnionType):
        return [leaf for arg in get_args(annotation) for leaf in _leaves(arg, metadata)]
    if origin in (list, dict, tuple):
        return [leaf for arg in get_args(annotation) for leaf in _leaves(arg, [])]
    return [(annotation, _flatten(metadata))]


NUMERIC_FIELDS = [
    (f"{model.__name__}.{name}", leaf, metadata)
    for model in _models(Spec)
    for name, field in model.model_fields.items()
    for leaf, metadata in _leaves(field.annotation, list(field.metadata))
    if leaf in (int, float)
]


def test_the_walk_finds_the_numeric_fields() -> None:
    names = {name for name, _, _ in NUMERIC_FIELDS}
    assert {"Training.epochs", "Split.seed", "DenseLayer.units", "EarlyStopping.patience"} <= names, sorted(names)
    assert len(names) > 60


@pytest.mark.parametrize("name,leaf,metadata", NUMERIC_FIELDS, ids=[n for n, _, _ in NUMERIC_FIELDS])
def test_numeric_field_is_strict_finite_and_bounded(name: str, leaf: type, metadata: list[Any]) -> None:
    assert any(isinstance(m, Strict) and m.strict for m in metadata), f"{name}: not strict (use StrictInt/FiniteFloat)"
    assert any(isinstance(m, (annotated_types.Le, annotated_types.Lt)) for m in metadata), f"{name}: no upper bound"
    assert any(isinstance(m, (annotated_types.Ge, annotated_types.Gt)) for m in metadata), f"{name}: no lower bound"
    if leaf is float:
        assert any(isinstance(m, AllowInfNan) and not m.allow_inf_nan for m in metadata), f"{name}: not finite"


@pytest.mark.parametrize("value", [True, False, "40", 40.0, 2**31])
def test_strict_int_rejects_booleans_strings_floats_and_huge_values(value: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        pydantic.TypeAdapter(PositiveInt).validate_python(value)


@pytest.mark.parametrize("value", [True, "0.5", float("inf"), float("-inf"), float("nan")])
def test_finite_float_rejects_booleans_strings_and_non_finite(value: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        pydantic.TypeAdapter(FiniteFloat).validate_python(value)


BOOL_FIELDS = [
    f"{model.__name__}.{name}"
    for model in _models(Spec)
    for name, field in model.model_fields.items()
    for leaf, metadata in _leaves(field.annotation, list(field.metadata))
    if leaf is bool and not any(isinstance(m, Strict) and m.strict for m in metadata)
]


def test_every_bool_field_is_strict() -> None:
    # a lax bool takes 1, "yes" and "on": `restore_best_weights: "no"` would be False by accident of spelling
    assert BOOL_FIELDS == []


def test_an_int_is_fine_where_a_float_is_asked_and_seeds_fit_numpy() -> None:
    assert pydantic.TypeAdapter(FiniteFloat).validate_python(1) == 1.0
    assert pydantic.TypeAdapter(Seed).validate_python(2**32 - 1) == 2**32 - 1
    for seed in (-1, 2**32, 2**64):
        with pytest.raises(pydantic.ValidationError):
            pydantic.TypeAdapter(Seed).validate_python(seed)
    assert pydantic.TypeAdapter(StrictInt).validate_python(-3) == -3
