"""A task: class names (optionally pinned to nodes) and optional words about the images."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import limits
from .._types import is_wnid
from ..classfile import read_class_file
from ..errors import InvalidParameterError
from ..graph.match import split_words


@dataclass(frozen=True)
class Task:
    """What a user asks for. Build with :meth:`create` or :meth:`from_file` (they validate)."""

    classes: tuple[str, ...]
    domain: str = ""
    pinned: dict[str, str] = field(default_factory=dict)  # class name -> wnid
    name: str = ""

    @classmethod
    def create(cls, classes, domain: str = "", pinned: dict[str, str] | None = None,
               name: str = "") -> Task:
        if isinstance(classes, str):
            classes = [c for c in re.split(r"\s*,\s*", classes) if c.strip()]
        classes = [str(c).strip() for c in classes]
        if not classes:
            raise InvalidParameterError("a task needs class names; give at least two")
        limits.check("the number of task classes", len(classes), "max_classes")
        if any(not split_words(c) for c in classes):
            raise InvalidParameterError(f"empty class name in {classes!r}")
        if len(classes) < 2:
            raise InvalidParameterError(
                f"a task needs at least two classes to choose between, got only {classes[0]!r}")
        seen: dict[str, str] = {}
        for c in classes:
            key = split_words(c).replace("-", " ")
            if key in seen:
                raise InvalidParameterError(
                    f"classes {seen[key]!r} and {c!r} are the same name after normalisation; "
                    "remove one or rename it")
            seen[key] = c
        pinned = dict(pinned or {})
        for c, w in pinned.items():
            if c not in classes:
                raise InvalidParameterError(f"pinned class {c!r} is not among the task's classes")
            if not is_wnid(w):
                raise InvalidParameterError(f"class {c!r} pinned to {w!r}, which is not a wnid "
                                            "like n02084071")
        return cls(tuple(classes), domain.strip(), pinned, name)

    @classmethod
    def from_file(cls, path: str | Path, domain: str = "") -> Task:
        """A task from a class file (format: :mod:`mll.classfile`; ``name<TAB>wnid`` pins)."""
        rows = read_class_file(path)
        return cls.create([name for name, _ in rows], domain=domain,
                          pinned={name: wnid for name, wnid in rows if wnid},
                          name=Path(path).stem)

