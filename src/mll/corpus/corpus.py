"""Read access to a published corpus: records by role, source and node, and their pixels."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..config import HubPaths, resolve_hub
from ..errors import InvalidParameterError, NotBuiltError, UnknownNameError
from .builder import CorpusLayout
from .records import CODEC_PNG, CODEC_RAW, ROLES, ImageRecord, Location, RecordTable
from .store import PackReader, decode

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceSummary:
    """Images and nodes of one source in one role (a row of ``mll data list``)."""

    source: str
    role: str
    images: int
    nodes: int
    license: str
    styles: tuple[str, ...]


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


class Corpus:
    """The published corpus of a hub directory (``Corpus.open(hub_dir)``).

    ``version`` is the content hash of the records (ids, sources, nodes, roles, ...), so labels
    computed on one corpus are never mixed with another's.
    """

    def __init__(self, hub_dir: Path, meta: dict[str, Any], table: RecordTable) -> None:
        self.hub_dir = hub_dir
        self.meta = meta
        self.version: str = meta["version"]
        self.table = table
        self._packs = PackReader(CorpusLayout.of(hub_dir).packs)

    @classmethod
    def open(cls, hub_dir: str | Path | None = None) -> Corpus:
        hub = resolve_hub(hub_dir)
        layout = CorpusLayout.of(hub)
        if not layout.current.is_file():
            raise NotBuiltError(f"no corpus in {hub}; build it with 'mll data build'")
        meta = json.loads(layout.current.read_text())
        return cls(hub, meta, RecordTable.load(layout.root / meta["manifest"]))

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"Corpus({str(self.hub_dir)!r}, version={self.version[:12]}, images={len(self)})"

    def close(self) -> None:
        self._packs.close()

    # -- selecting -----------------------------------------------------------------------------
    @property
    def sources(self) -> tuple[str, ...]:
        return self.table.text["source"].normalised().vocab

    def _check(self, column: str, wanted: set[str] | None, choices: Sequence[str]) -> None:
        for name in sorted(wanted or ()):
            if name not in choices:
                raise UnknownNameError(column, name, choices, hint=f"known: {', '.join(choices)}")

    def select(self, role: str | Iterable[str] | None = None,
               source: str | Iterable[str] | None = None,
               wnids: str | Iterable[str] | None = None,
               style: str | Iterable[str] | None = None) -> np.ndarray:
        """Row indices of the records matching every filter given (None: any)."""
        roles, srcs, nodes, styles = (_as_set(role), _as_set(source), _as_set(wnids),
                                      _as_set(style))
        self._check("role", roles, ROLES)
        self._check("source", srcs, self.sources)
        mask = np.ones(len(self.table), dtype=bool)
        for column, wanted in (("role", roles), ("source", srcs), ("wnid", nodes),
                               ("style", styles)):
            if wanted is not None:
                mask &= self.table.text[column].mask(wanted)
        return np.flatnonzero(mask)

    def records(self, role: str | Iterable[str] | None = None,
                source: str | Iterable[str] | None = None,
                wnids: str | Iterable[str] | None = None,
                style: str | Iterable[str] | None = None) -> list[ImageRecord]:
        """The records matching every filter given, in manifest order."""
        return self.table.take(self.select(role, source, wnids, style)).records()

    def samples(self, wnid: str, descendants: bool = False) -> list[ImageRecord]:
        """Sample-role images of a node, and of every node below it when ``descendants``."""
        nodes = {wnid}
        if descendants:
            nodes |= self.graph.descendants(wnid)
        return self.records(role="sample", wnids=nodes)

    @cached_property
    def graph(self) -> Any:
        from ..graph.graph import SemanticGraph

        return SemanticGraph.load(HubPaths(self.hub_dir).graph)

    def node_counts(self, role: str = "sample") -> dict[str, int]:
        """Images per node in ``role``."""
        return dict(Counter(self.table.take(self.select(role=role)).text["wnid"].values()))

    def summary(self) -> list[SourceSummary]:
        """Per source and role: images, nodes, license(s), styles."""
        rows = []
        for source in self.sources:
            for role in ROLES:
                sub = self.table.take(self.select(role=role, source=source))
                if len(sub):
                    rows.append(SourceSummary(
                        source, role, len(sub), len(sub.text["wnid"].normalised().vocab),
                        ", ".join(sub.text["license"].normalised().vocab),
                        sub.text["style"].normalised().vocab))
        return rows

    # -- pixels --------------------------------------------------------------------------------
    @cached_property
    def _row_of(self) -> dict[str, int]:
        return {iid: i for i, iid in enumerate(self.table.image_ids())}

    def encoded(self, image_id: str) -> tuple[Location, ImageRecord, bytes]:
        """One image's stored bytes as they are (PNG, or raw pixels), with where and what it is.

        For serving an image without decoding it. The pack's name comes from the manifest, so
        it is checked to be one plain file name resolving inside the packs directory first.
        """
        from .._safepath import child_path

        row = self._row_of.get(image_id) if isinstance(image_id, str) else None
        if row is None:
            raise UnknownNameError("image id", image_id, hint=f"not in corpus {self.version[:12]}")
        loc = self.table.location(row)
        child_path(self._packs.directory, f"{loc.pack}.pack", "image pack")
        return loc, self.table.record(row), self._packs.read(loc.pack, loc.offset, loc.length)

    def load(self, image_ids: Sequence[str]) -> list[np.ndarray]:
        """The images, in the order asked: ``HxW`` or ``HxWx3`` uint8 arrays.

        Bytes are read in storage order; PNGs are decoded on one thread per core (Pillow
        releases the GIL while inflating, which about doubles the rate on two cores).
        """
        if isinstance(image_ids, str):
            raise InvalidParameterError("Corpus.load expects a list of image ids, got one string")
        rows = np.empty(len(image_ids), dtype=np.int64)
        for k, iid in enumerate(image_ids):
            if iid not in self._row_of:
                raise UnknownNameError("image id", iid, hint=f"not in corpus {self.version[:12]}")
            rows[k] = self._row_of[iid]
        t = self.table
        out: list[np.ndarray] = [np.empty(0, np.uint8)] * len(rows)
        png: list[tuple[int, bytes, tuple[int, int, int]]] = []
        for k in np.lexsort((t.offset[rows], t.pack.codes[rows])).tolist():
            loc = t.location(int(rows[k]))
            data = self._packs.read(loc.pack, loc.offset, loc.length)
            if loc.codec == CODEC_RAW:
                out[k] = decode(loc.codec, data, loc.shape)
            else:
                png.append((k, data, loc.shape))
        if png:
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                decoded = pool.map(lambda job: decode(CODEC_PNG, job[1], job[2]), png)
                for (k, _, _), img in zip(png, decoded, strict=True):
                    out[k] = img
        return out
