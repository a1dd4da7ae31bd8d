"""Tasks solved over HTTP: the uploaded images staged under names mll chooses, the results kept.

A solve's images are hostile input like an uploaded model: their names are read only for a known
image suffix and for display, the bytes are written to ``<work>/images/0001.png`` and so on, and
a zip is unpacked with the checks of model uploads (:func:`mll.serve.uploads.unpack`: no links,
no paths, sizes and ratios bounded as it inflates). Each file is bounded by ``max_image_bytes``
and its pixels by ``max_image_pixels`` (checked by the decoder), their number by
``max_solve_images`` (:mod:`mll.limits`).

Results live under ``<hub>/serve/solves/<id>/`` (``result.json``, ``report.html``,
``predictor.zip``): written in a hidden directory beside it and renamed into place whole, so a
reader sees a finished solve or none; only the last ``keep`` are kept.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .. import limits as _limits
from .._safepath import create_new
from ..errors import InvalidParameterError, UnknownNameError

logger = logging.getLogger(__name__)

_ID = re.compile(r"^[0-9a-f]{32}$")
_CHUNK = 1 << 20
FILES = {"report": "report.html", "predictor": "predictor.zip", "result": "result.json"}


def display_name(name: str | None) -> str:
    """A sent file name as shown back: its last part, printable, at most 120 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return (base or "unnamed")[:120]


@dataclass
class Staged:
    """Images written for one solve: the folder, the original name of each staged file, and the
    files refused before decoding."""

    folder: Path
    names: dict[str, str] = field(default_factory=dict)  # staged file name -> sent name
    skipped: list[dict] = field(default_factory=list)


def _copy(src: BinaryIO, dest: Path, shown: str, lim) -> None:
    n = 0
    with create_new(dest) as out:
        while block := src.read(_CHUNK):
            n += len(block)
            _limits.check(f"image {shown!r}: size in bytes", n, "max_image_bytes", lim)
            out.write(block)


def stage_images(work: Path, files: list[tuple[str, BinaryIO]], max_bytes: int) -> Staged:
    """Write the sent files (several images, or one zip of images) into ``work/images``.

    Files without an image suffix are skipped with their reason; a zip among several files, or
    more images than ``max_solve_images``, is refused.
    """
    from ..reuse.solve import IMAGE_SUFFIXES
    from .uploads import copy_bounded, unpack

    lim = _limits.current()
    if not files:
        raise InvalidParameterError("send the images to classify: several image files, or one "
                                    ".zip of them")
    staged = Staged(work / "images")
    staged.folder.mkdir(parents=True)
    zips = [f for f in files if display_name(f[0]).lower().endswith(".zip")]
    if zips and len(files) > 1:
        raise InvalidParameterError("send either image files or one .zip of images, not both")
    if zips:
        raw = work / "upload.zip"
        copy_bounded(files[0][1], raw, max_bytes, "the zip")
        unpacked = work / "unpacked"
        unpack(raw, unpacked, max_bytes)
        raw.unlink()
        members = sorted(unpacked.iterdir())
        _limits.check("the number of files in the zip", len(members), "max_solve_images", lim)
        sources = [(p.name, None, p) for p in members]
    else:
        _limits.check("the number of files sent", len(files), "max_solve_images", lim)
        sources = [(name, src, None) for name, src in files]
    for i, (name, src, path) in enumerate(sources, 1):
        shown = display_name(name)
        suffix = Path(shown).suffix.lower()
        if suffix not in IMAGE_SUFFIXES:
            staged.skipped.append({"file": shown, "reason": "not an image file (expected one "
                                   f"of {', '.join(sorted(IMAGE_SUFFIXES))})"})
            continue
        dest = staged.folder / f"{i:05d}{suffix}"
        if path is not None:
            _limits.check(f"image {shown!r}: size in bytes", path.stat().st_size,
                          "max_image_bytes", lim)
            os.replace(path, dest)
        else:
            _copy(src, dest, shown, lim)
        staged.names[dest.name] = shown
    return staged


class SolveStore:
    """Finished solves under ``<hub>/serve/solves``, the newest ``keep`` kept."""

    def __init__(self, hub_root: Path) -> None:
        self.root = Path(hub_root) / "serve" / "solves"

    def new_work(self) -> tuple[str, Path]:
        """A fresh solve id and the hidden directory it is written in."""
        solve_id = secrets.token_hex(16)
        work = self.root / f".work-{solve_id}"
        work.mkdir(parents=True)
        return solve_id, work

    def publish(self, solve_id: str, work: Path, result: dict, keep: int) -> None:
        """Write ``result.json`` and rename the finished directory into place; prune old ones."""
        shutil.rmtree(work / "images", ignore_errors=True)
        (work / FILES["result"]).write_text(json.dumps(result, ensure_ascii=False))
        os.replace(work, self.root / solve_id)
        self.prune(keep)

    def prune(self, keep: int) -> None:
        """Remove all but the ``keep`` newest solves (and work directories over a day old,
        left by a server that stopped mid-solve)."""
        import time

        done = sorted((p for p in self.root.iterdir() if _ID.match(p.name)),
                      key=lambda p: p.stat().st_mtime, reverse=True)
        stale = [p for p in self.root.glob(".work-*")
                 if time.time() - p.stat().st_mtime > 86400]
        for path in done[keep:] + stale:
            shutil.rmtree(path, ignore_errors=True)

    def path(self, solve_id: str, which: str) -> Path:
        """A finished solve's report, predictor or result file (404 for any other id)."""
        if not _ID.match(solve_id or "") or not (self.root / solve_id / FILES[which]).is_file():
            raise UnknownNameError("solve", str(solve_id)[:40],
                                   hint="solves are kept for a while, then pruned")
        return self.root / solve_id / FILES[which]
