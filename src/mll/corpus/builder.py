"""Build the corpus: plan units, render the missing ones on every core, publish one manifest.

Layout of ``<hub>/corpus``::

    packs/<unit>.pack       encoded images of one unit (immutable, written once)
    units/<unit>.npz        that unit's records and where each image's bytes are
    imports.json            user folders imported with ``mll data import``
    manifest-<v>.npz        every record of the corpus, deduplicated, with locations
    current.json            names the published manifest: written last, atomically

A unit's file appears only after its pack, and ``current.json`` only after the manifest, so an
interrupted build leaves the previous corpus visible and the next build resumes from the units
already done. A second build with nothing new renders nothing and rewrites nothing.
"""

from __future__ import annotations

import fcntl
import json
import logging
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_json, progress
from ..config import HubPaths, resolve_hub
from ..errors import NotBuiltError, StoreError
from . import sources as _sources  # noqa: F401 - registers the built-in sources
from .config import CorpusConfig
from .records import ROLES, ImageRecord, Location, RecordTable
from .render import rendering_digest
from .sources.base import SOURCES, Item, Unit
from .store import PackWriter, canonical, encode, image_id, shape3

logger = logging.getLogger(__name__)

ROLE_PRIORITY = {"eval": 0, "sample": 1, "train": 2}  # a duplicate keeps its strictest role


@dataclass(frozen=True)
class CorpusLayout:
    root: Path

    @classmethod
    def of(cls, hub_dir: str | Path | None) -> CorpusLayout:
        return cls(HubPaths(resolve_hub(hub_dir)).corpus)

    @property
    def packs(self) -> Path:
        return self.root / "packs"

    @property
    def units(self) -> Path:
        return self.root / "units"

    @property
    def current(self) -> Path:
        return self.root / "current.json"

    @property
    def imports(self) -> Path:
        return self.root / "imports.json"

    def unit_file(self, key: str) -> Path:
        return self.units / f"{key}.npz"

    def read_imports(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.imports.read_text()) if self.imports.is_file() else {}


@dataclass(frozen=True)
class BuildReport:
    version: str
    changed: bool
    units: int
    units_rendered: int
    images: int
    roles: dict[str, int]
    duplicates_dropped: int
    seconds: float


@contextmanager
def writer_lock(layout: CorpusLayout) -> Iterator[None]:
    """One writer per corpus; a second build or import fails at once instead of interleaving."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.root / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"another 'mll data build' or 'mll data import' is writing "
                           f"{layout.root}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- rendering (runs in worker processes) ---------------------------------------------------------
EncodedItem = tuple[ImageRecord, int, tuple[int, int, int], bytes]


def encode_records(items: Iterable[Item], source: str) -> list[EncodedItem]:
    """Canonical pixels -> (record, codec, shape, bytes) for each source item."""
    out = []
    for it in items:
        arr = canonical(it.image)
        codec, blob = encode(arr)
        rec = ImageRecord(image_id(arr), source, it.orig_id, it.license, it.style, it.wnid,
                          it.role, it.augmentation)
        out.append((rec, codec, shape3(arr), blob))
    return out


def render_unit(job: tuple[str, str, dict[str, Any]]) -> tuple[str, list[EncodedItem]]:
    key, source, params = job
    return key, encode_records(SOURCES.get(source).render(params), source)


# -- storing ----------------------------------------------------------------------------------------
class StoreIndex:
    """Which image ids are already stored, and where; grows as units are written."""

    def __init__(self) -> None:
        self._loc: dict[bytes, Location] = {}

    def add_table(self, table: RecordTable) -> None:
        for i in range(len(table)):
            self._loc.setdefault(table.digest[i].tobytes(), table.location(i))

    def write_unit(self, layout: CorpusLayout, key: str, items: Sequence[EncodedItem]) -> RecordTable:
        """Store the new images of one unit in its pack, then save its record table."""
        pack = PackWriter(layout.packs, key[:32])
        locations = []
        for rec, codec, shape, blob in items:
            digest = bytes.fromhex(rec.image_id)
            if digest not in self._loc:
                offset, length = pack.add(blob)
                self._loc[digest] = Location(pack.name, offset, length, codec, shape)
            locations.append(self._loc[digest])
        if not pack.empty:
            layout.packs.mkdir(parents=True, exist_ok=True)
            pack.publish()
        table = RecordTable.build([it[0] for it in items], locations)
        table.save(layout.unit_file(key))
        return table


def load_unit(layout: CorpusLayout, key: str) -> RecordTable | None:
    """A finished unit's table, or None if it is missing or its packs are gone."""
    path = layout.unit_file(key)
    if not path.is_file():
        return None
    table = RecordTable.load(path)
    if all((layout.packs / f"{p}.pack").is_file() for p in table.pack.vocab):
        return table
    logger.warning("unit %s refers to missing packs; rendering it again", key[:12])
    return None


# -- assembling -----------------------------------------------------------------------------------
def assemble(tables: Sequence[RecordTable], source_order: Sequence[str]
             ) -> tuple[RecordTable, Counter[tuple[str, str, str, str]]]:
    """All records, each image once, sorted; plus what was dropped as a duplicate of what.

    An image found under several records (the same picture in two sources, or an alias) keeps
    one: the strictest role (eval, then sample, then train: an image seen in evaluation must not
    be trained or labelled on), then the earlier source, then the smaller ``orig_id``.
    """
    table = RecordTable.concat(tables)
    if not len(table):
        return table, Counter()
    rank = {s: i for i, s in enumerate(source_order)}
    src = table.text["source"]
    src_rank = np.array([rank.get(v, len(rank)) for v in src.vocab], dtype=np.int64)[src.codes]
    role = table.text["role"]
    role_rank = np.array([ROLE_PRIORITY[v] for v in role.vocab], dtype=np.int64)[role.codes]
    orig, aug = table.text["orig_id"].codes, table.text["augmentation"].codes
    pref = np.lexsort((aug, orig, src_rank, role_rank))
    digests = table.digest[pref].view(np.dtype((np.void, 32))).ravel()
    _, first = np.unique(digests, return_index=True)
    keep = np.zeros(len(table), dtype=bool)
    keep[pref[first]] = True
    dropped = _duplicates(table, pref, first, keep)
    kept = np.flatnonzero(keep)
    order = kept[np.lexsort((aug[kept], orig[kept], src_rank[kept]))]
    return table.take(order), dropped


def _duplicates(table: RecordTable, pref: np.ndarray, first: np.ndarray,
                keep: np.ndarray) -> Counter[tuple[str, str, str, str]]:
    """(dropped source, dropped role, kept source, kept role) -> count."""
    winner: dict[bytes, int] = {table.digest[pref[f]].tobytes(): int(pref[f]) for f in first}
    out: Counter[tuple[str, str, str, str]] = Counter()
    src, role = table.text["source"], table.text["role"]
    for i in np.flatnonzero(~keep).tolist():
        w = winner[table.digest[i].tobytes()]
        out[(src[i], role[i], src[w], role[w])] += 1
    return out


def publish(layout: CorpusLayout, manifest: RecordTable, meta: dict[str, Any]) -> tuple[str, bool]:
    """Write the manifest, then point ``current.json`` at it; skip both if nothing changed."""
    version = manifest.content_hash()
    name = f"manifest-{version[:32]}.npz"
    doc = {**meta, "version": version, "manifest": name, "images": len(manifest),
           "roles": {r: int(n) for r, n in zip(*np.unique(manifest.text["role"].values(),
                                                          return_counts=True), strict=True)}}
    if layout.current.is_file() and json.loads(layout.current.read_text()) == doc:
        return version, False
    if not (layout.root / name).is_file():
        manifest.save(layout.root / name)
    atomic_write_json(layout.current, doc)
    return version, True


# -- the build ------------------------------------------------------------------------------------
def selected_sources(cfg: CorpusConfig) -> list[str]:
    """The sources named in ``cfg`` or, by default, every registered one except ``test-*``
    (the test suite's synthetic sources are only built when named)."""
    names = list(cfg.sources) or [n for n in SOURCES.list() if not n.startswith("test-")]
    for n in names:
        SOURCES.get(n)  # unknown names raise with suggestions
    return sorted(names, key=SOURCES.list().index)


def plan(cfg: CorpusConfig) -> list[tuple[str, Unit]]:
    """``(key, unit)`` for every unit of the selected sources, in a fixed order."""
    jobs = []
    code = rendering_digest()
    for name in selected_sources(cfg):
        src = SOURCES.get(name)
        src.check()
        jobs += [(unit.key(f"{src.version}:{code}"), unit) for unit in src.plan(cfg)]
    return jobs


def run_units(layout: CorpusLayout, todo: list[tuple[str, Unit]], index: StoreIndex,
              workers: int) -> dict[str, RecordTable]:
    """Render ``todo`` on ``workers`` processes; each unit is stored as soon as it is done."""
    jobs = [(key, unit.source, unit.params) for key, unit in todo]
    done: dict[str, RecordTable] = {}
    if not jobs:
        return done
    if workers <= 1 or len(jobs) == 1:
        results: Any = map(render_unit, jobs)
        for key, items in progress(results, "rendering corpus units", total=len(jobs)):
            done[key] = index.write_unit(layout, key, items)
        return done
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(workers, len(jobs))) as pool:
        results = pool.imap_unordered(render_unit, jobs)
        for key, items in progress(results, "rendering corpus units", total=len(jobs)):
            done[key] = index.write_unit(layout, key, items)
    return done


def import_tables(layout: CorpusLayout) -> tuple[list[RecordTable], list[str]]:
    """The tables of the imported user folders and their source names, by task name."""
    tables, names = [], []
    for name, entry in sorted(layout.read_imports().items()):
        table = load_unit(layout, entry["unit"])
        if table is None:
            raise NotBuiltError(f"imported data {name!r} is missing from {layout.root}; "
                           f"import {entry['dir']} again")
        tables.append(table)
        names.append(f"user-{name}")
    return tables, names


def build(hub_dir: str | Path | None, cfg: CorpusConfig | None = None) -> BuildReport:
    """Build (or bring up to date) the corpus of ``hub_dir`` from the installed sources."""
    cfg = cfg or CorpusConfig()
    layout = CorpusLayout.of(hub_dir)
    t0 = time.perf_counter()
    with writer_lock(layout):
        jobs = plan(cfg)
        tables: dict[str, RecordTable] = {}
        index = StoreIndex()
        for key, _ in jobs:
            table = load_unit(layout, key)
            if table is not None:
                tables[key] = table
                index.add_table(table)
        for table in import_tables(layout)[0]:
            index.add_table(table)
        todo = [(k, u) for k, u in jobs if k not in tables]
        tables.update(run_units(layout, todo, index, cfg.workers))
        keys = [k for k, _ in jobs]
        names = selected_sources(cfg)
        splits = {n: s for n in names if (s := SOURCES.get(n).splits(cfg))}
        version, changed, manifest, dropped = finish(
            layout, cfg.to_json(), keys, [tables[k] for k in keys], names, splits)
    return BuildReport(version=version, changed=changed, units=len(jobs), units_rendered=len(todo),
                       images=len(manifest), roles=role_counts(manifest),
                       duplicates_dropped=sum(dropped.values()),
                       seconds=round(time.perf_counter() - t0, 2))


def finish(layout: CorpusLayout, config: dict[str, Any], unit_keys: list[str],
           tables: list[RecordTable], source_order: list[str],
           splits: dict[str, Any] | None = None
           ) -> tuple[str, bool, RecordTable, Counter[tuple[str, str, str, str]]]:
    """Assemble the built units' tables and every import into one manifest, and publish it;
    ``splits`` (per source, e.g. which concepts' photos are sample and which eval) is recorded."""
    imported, import_sources = import_tables(layout)
    order = source_order + import_sources
    manifest, dropped = assemble(tables + imported, order)
    meta = {"config": config, "sources": order, "builtin_sources": source_order,
            "units": unit_keys, "splits": splits or {},
            "duplicates": [{"dropped_source": a, "dropped_role": b, "kept_source": c,
                            "kept_role": d, "count": n}
                           for (a, b, c, d), n in sorted(dropped.items())]}
    version, changed = publish(layout, manifest, meta)
    return version, changed, manifest, dropped


def role_counts(table: RecordTable) -> dict[str, int]:
    counts = Counter(table.text["role"].values())
    return {r: counts.get(r, 0) for r in ROLES}
