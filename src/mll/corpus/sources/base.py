"""What every image source provides, and how its work is cut into cached units.

A source *plans* its work in the main process (cheap: which inputs, which roles, which variants)
as :class:`Unit` s, and *renders* a unit in a worker process, yielding :class:`Item` s. A unit's
key hashes everything its output depends on (source, code version, the rendering parameters of
:mod:`mll.corpus.render`, its own parameters, input file sizes and times), so a rebuild renders
only units whose key is new.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from ..._registry import Registry
from ...errors import MissingDependencyError
from ..config import CorpusConfig


@dataclass(frozen=True)
class Item:
    """One image as a source yields it, before hashing and encoding."""

    image: np.ndarray
    orig_id: str
    wnid: str
    role: str
    augmentation: str
    style: str
    license: str


@dataclass(frozen=True)
class Unit:
    """A cached piece of build work: one source's images for one slice of its inputs."""

    source: str
    part: str
    params: dict[str, Any]
    inputs: tuple[str, ...] = field(default=())

    def key(self, version: str) -> str:
        stats = []
        for p in self.inputs:
            st = os.stat(p)
            stats.append([p, st.st_size, st.st_mtime_ns])
        doc = {"source": self.source, "part": self.part, "version": version,
               "params": self.params, "inputs": stats}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class Source:
    """Base class of the image sources; subclasses set the class attributes and two methods."""

    name: ClassVar[str]
    version: ClassVar[int] = 1  # bump when the source's own code changes its output
    install_hint: ClassVar[str] = ""

    def inputs(self) -> Sequence[Path]:
        """Files or directories the source reads; all must exist for it to build."""
        raise NotImplementedError

    def plan(self, cfg: CorpusConfig) -> list[Unit]:
        raise NotImplementedError

    def render(self, params: dict[str, Any]) -> Iterator[Item]:
        raise NotImplementedError

    def splits(self, cfg: CorpusConfig) -> dict[str, Any]:
        """Seeded role splits worth recording in the manifest (e.g. concepts per role)."""
        return {}

    def check(self) -> None:
        """Raise a clear error naming the missing input and how to install it."""
        for path in self.inputs():
            if not Path(path).exists():
                raise MissingDependencyError(f"corpus source {self.name!r} needs {path}, which is missing; "
                               f"{self.install_hint or 'run make setup'} (or leave the source "
                               f"out with --source)")


SOURCES: Registry[Source] = Registry("corpus source")
S = TypeVar("S", bound=type[Source])


def register(cls: S) -> S:
    """Class decorator: register one instance of a source under its ``name``."""
    SOURCES.register(cls.name)(cls())
    return cls


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i: i + size] for i in range(0, len(items), size)]
