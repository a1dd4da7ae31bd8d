"""Import a user's ImageNet-style folder tree (``DIR/<class>/<images>``) into the corpus.

Class folders are named by wnid (``n02084071``) or by class name, matched to a node through the
graph. Every problem (a file that is not an image or is truncated, an empty folder, a name that
matches no node, a file outside any class folder) is reported with its path, and the rest of the
tree is imported. An import is a build unit of its own, kept across ``mll data build``; importing
the same task name again replaces it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._io import atomic_write_json, progress
from .._types import is_wnid
from ..config import HubPaths, resolve_hub
from ..errors import InvalidParameterError, NotBuiltError
from ..graph.graph import SemanticGraph
from ..images import load_image_file
from .builder import (
    CorpusLayout,
    EncodedItem,
    StoreIndex,
    encode_records,
    finish,
    import_tables,
    load_unit,
    writer_lock,
)
from .sources.base import Item

if TYPE_CHECKING:
    from ..graph import Matcher

logger = logging.getLogger(__name__)

IMPORT_ROLES = ("sample", "eval")
MAX_SIDE = 512  # larger pictures are shrunk: every model resizes to ~224 px anyway
_TASK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

Resolver = Callable[[Sequence[str]], list[str | None]]


@dataclass(frozen=True)
class ImportProblem:
    path: str
    reason: str


@dataclass(frozen=True)
class ImportReport:
    """What ``mll data import`` did: classes matched, images imported, problems found."""

    task: str
    role: str
    images: int
    classes: dict[str, str]
    problems: list[ImportProblem] = field(default_factory=list)
    version: str = ""
    duplicates_dropped: int = 0


def matcher_resolver(matcher: Matcher) -> Resolver:
    """Folder names -> wnids with the graph's matcher (every name is context for the others).

    A name whose best candidate has no WordNet lemma behind it (only caption similarity) counts
    as unmatched: a guess from embeddings alone is not a label.
    """
    def resolve(names: Sequence[str]) -> list[str | None]:
        ranked = matcher.match(list(names), top=1)
        return [c[0].wnid if c and c[0].lexical else None for c in ranked]

    return resolve


def resolve_folders(names: Sequence[str], graph_has: Callable[[str], bool],
                    resolver: Resolver) -> dict[str, str | None]:
    """wnid folder names as they are (if in the graph), the others through ``resolver``."""
    out: dict[str, str | None] = {}
    to_match = []
    for name in names:
        if is_wnid(name):
            out[name] = name if graph_has(name) else None
        else:
            to_match.append(name)
    if to_match:
        out.update(zip(to_match, resolver(to_match), strict=True))
    return out


def shrink(img: np.ndarray) -> tuple[np.ndarray, str]:
    """The picture with its longer side at most ``MAX_SIDE``, and the augmentation tag."""
    h, w = img.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return img, "none"
    from PIL import Image

    scale = MAX_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS)), \
        f"shrink{MAX_SIDE}"


def scan(directory: Path, classes: dict[str, str | None], task: str, role: str,
         problems: list[ImportProblem]) -> Iterator[Item]:
    """Items for every readable image under a matched class folder; problems for the rest."""
    for entry in sorted(directory.iterdir()):
        if entry.is_file():
            problems.append(ImportProblem(str(entry), "file outside any class folder; ignored"))
            continue
        wnid = classes.get(entry.name)
        if wnid is None:
            problems.append(ImportProblem(str(entry), f"folder name {entry.name!r} matches no "
                                                      "graph node; rename it to a wnid or a noun"))
            continue
        files = sorted(p for p in entry.rglob("*") if p.is_file())
        if not files:
            problems.append(ImportProblem(str(entry), "empty folder: no images"))
        for path in files:
            try:
                img, aug = shrink(load_image_file(path))
            except InvalidParameterError as exc:
                problems.append(ImportProblem(str(path), str(exc).removeprefix(f"{path}: ")))
                continue
            yield Item(img, str(path.relative_to(directory)), wnid, role, aug, f"user/{task}",
                       "user-provided")


def import_folder(hub_dir: str | Path | None, directory: str | Path, role: str,
                  task: str | None = None, resolver: Resolver | None = None) -> ImportReport:
    """Import ``directory`` as ``role`` images of the task ``task`` (default: the folder's name).

    ``resolver`` maps class-folder names to wnids (or None); the default uses the graph's
    :class:`~mll.graph.Matcher`.
    """
    hub = resolve_hub(hub_dir)
    directory = Path(directory).expanduser().resolve()
    if not directory.is_dir():
        raise InvalidParameterError(f"import directory {directory} does not exist or is not a "
                                    "folder; give an ImageNet-style tree DIR/<class>/<images>")
    if role not in IMPORT_ROLES:
        raise InvalidParameterError(f"import role must be one of {', '.join(IMPORT_ROLES)}, "
                                    f"got {role!r}")
    task = task or directory.name
    if not _TASK.match(task):
        raise InvalidParameterError(f"task name {task!r}: use letters, digits, '-', '_' or '.' "
                                    "(at most 64)")
    graph = SemanticGraph.load(HubPaths(hub).graph)
    names = sorted(p.name for p in directory.iterdir() if p.is_dir())
    if not names:
        raise InvalidParameterError(f"{directory} has no class folders; expected "
                                    "DIR/<class>/<images>")
    if resolver is None:
        from ..graph import Matcher

        resolver = matcher_resolver(Matcher.for_hub(hub))
    classes = resolve_folders(names, graph.__contains__, resolver)
    problems: list[ImportProblem] = []
    items = encode_records(progress(list(scan(directory, classes, task, role, problems)),
                                    f"importing {directory.name}"), f"user-{task}")
    for p in problems:
        logger.warning("%s: %s", p.path, p.reason)
    if not items:
        raise InvalidParameterError(f"nothing to import from {directory}: "
                                    + "; ".join(f"{p.path}: {p.reason}" for p in problems[:5]))
    layout = CorpusLayout.of(hub)
    with writer_lock(layout):
        version, dropped = _store_and_publish(layout, task, role, directory, items)
    matched = {k: v for k, v in classes.items() if v is not None}
    return ImportReport(task, role, len(items), matched, problems, version, dropped)


def _store_and_publish(layout: CorpusLayout, task: str, role: str, directory: Path,
                       items: list[EncodedItem]) -> tuple[str, int]:
    """Write the import's unit, register it, and publish a manifest that includes it."""
    meta = json.loads(layout.current.read_text()) if layout.current.is_file() else {}
    built = [load_unit(layout, k) for k in meta.get("units", [])]
    if any(t is None for t in built):
        raise NotBuiltError(f"the corpus in {layout.root} is incomplete; run 'mll data build' first")
    tables = [t for t in built if t is not None]
    index = StoreIndex()
    for table in tables:
        index.add_table(table)
    for table in import_tables(layout)[0]:
        index.add_table(table)
    digest = hashlib.sha256(json.dumps([task, role] + sorted(
        (rec.orig_id, rec.image_id, rec.wnid) for rec, *_ in items)).encode()).hexdigest()
    key = f"user-{digest}"
    if load_unit(layout, key) is None:
        index.write_unit(layout, key, items)
    imports = layout.read_imports()
    imports[task] = {"unit": key, "role": role, "dir": str(directory)}
    atomic_write_json(layout.imports, imports)
    version, _, _, dropped = finish(layout, meta.get("config", {}), meta.get("units", []),
                                    tables, meta.get("builtin_sources", []),
                                    meta.get("splits", {}))
    return version, sum(dropped.values())
