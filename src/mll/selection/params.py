"""Declared constraints on selector parameters, checked once when ``fit`` starts.

Each selector lists, per ``__init__`` parameter, the constraints a value may satisfy (any one is
enough), as scikit-learn does: ``{"cost": [Interval(Real, 0, 1)], "budget_ms": [None,
Interval(Real, 0, None, closed="neither")]}``. Numbers are checked by kind, not by Python type: an
int is a real number (``cost=0`` is valid), a bool is not a number, numpy scalars count as their
kind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Literal

import numpy as np

from ..errors import InvalidParameterError


class Constraint:
    """One acceptable form of a value; ``describe`` says it in words for the error message."""

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _is_number(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Interval(Constraint):
    """A number of ``kind`` (``Integral`` or ``Real``) between ``low`` and ``high`` (None: open)."""

    kind: type
    low: float | None
    high: float | None
    closed: Literal["both", "left", "right", "neither"] = "both"

    def accepts(self, value: Any) -> bool:
        if not _is_number(value, self.kind):
            return False
        if not isinstance(value, Integral) and math.isnan(float(value)):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def describe(self) -> str:
        noun = "an integer" if issubclass(self.kind, Integral) else "a number"
        if self.low is None and self.high is None:
            return noun
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{noun} in {left}{low}, {high}{right}"


@dataclass(frozen=True)
class Boolean(Constraint):
    """True or False (numpy booleans too); 0 and 1 are not accepted, they are numbers."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def describe(self) -> str:
        return "True or False"


@dataclass(frozen=True)
class Function(Constraint):
    """A function (e.g. the oracle's target accuracy of a component)."""

    def accepts(self, value: Any) -> bool:
        return callable(value)

    def describe(self) -> str:
        return "a function"


@dataclass(frozen=True)
class NoneValue(Constraint):
    def accepts(self, value: Any) -> bool:
        return value is None

    def describe(self) -> str:
        return "None"


@dataclass(frozen=True)
class SequenceOf(Constraint):
    """A non-empty list or tuple whose every item satisfies ``item`` (a string is not one)."""

    item: Constraint

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) > 0
                and all(self.item.accepts(v) for v in value))

    def describe(self) -> str:
        return f"a non-empty list, each item {self.item.describe()}"


def _as_constraint(spec: Constraint | None) -> Constraint:
    if spec is None:
        return NoneValue()
    if isinstance(spec, Constraint):
        return spec
    raise TypeError(f"not a parameter constraint: {spec!r}")


def check_params(owner: str, params: dict[str, Any],
                 constraints: dict[str, list[Constraint | None]]) -> None:
    """Raise :class:`InvalidParameterError` for the first parameter no constraint accepts.

    Every parameter must be declared: a selector whose ``__init__`` has an undeclared parameter is
    a programming error (``TypeError``), caught by the contract test over the registry.
    """
    undeclared = sorted(set(params) - set(constraints))
    if undeclared:
        raise TypeError(f"{owner}: no constraint declared for parameter(s) {undeclared}")
    for name, value in params.items():
        options = [_as_constraint(c) for c in constraints[name]]
        if not any(c.accepts(value) for c in options):
            expected = " or ".join(c.describe() for c in options)
            raise InvalidParameterError(
                f"{owner}: parameter {name} must be {expected}, got {value!r} "
                f"({type(value).__name__})")
