"""A small registry of named constructors, used for model families and selection methods."""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import MLLWarning, UnknownNameError

T = TypeVar("T")


def _natural_key(name: str) -> list[object]:
    return [int(tok) if tok.isdigit() else tok for tok in re.split(r"(\d+)", name)]


class Registry(Generic[T]):
    """Maps names to objects; ``register`` is a decorator, unknown names suggest close ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                warnings.warn(f"{self.kind} {name!r} registered twice; the last wins", MLLWarning,
                              stacklevel=2)
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._items) from None

    def list(self, pattern: str = "*") -> list[str]:
        return sorted((n for n in self._items if fnmatch.fnmatch(n, pattern)), key=_natural_key)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())
