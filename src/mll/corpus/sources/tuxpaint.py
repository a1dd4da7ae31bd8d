"""Tux Paint's stamps (Debian ``tuxpaint-stamps-default``): one picture per concept, drawn or photographed.

The reviewed table says which stamps are photographic cut-outs and which are drawings. Photos are
split by *concept* (seeded): a ``photo_sample_fraction`` of the photographed nodes go to ``sample``
so labels carry evidence of how every model does on photographs, the rest to ``eval``, so the
benchmark's photo task runs on concepts whose photos were never labelled on. Nodes that another
source photographs for evaluation (foolbox's ImageNet photos) always stay on the eval side, nodes
scikit-image photographs for labelling on the sample side.
Drawings go to ``sample`` (more nodes and another style for labelling). Both are RGBA cut-outs,
so they get the icon variants: sizes, backgrounds, flips and rotations.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CorpusConfig
from ..mappings import load_mapping
from .base import Item, Source, Unit, register
from .icons import allot, concept_subset, icon_units, render_variants, svg_or_none

STAMPS = Path("/usr/share/tuxpaint/stamps")


_ENTITY = re.compile(rb'<!ENTITY\s+(\w+)\s+"([^"]*)"\s*>')
_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*(\[.*?\])?\s*>", re.S)


def inline_entities(svg: bytes) -> bytes:
    """Replace the internal string entities some Inkscape files declare (``&ns_svg;``) and drop
    the DOCTYPE: the SVG parser refuses entities, and these only abbreviate namespace URLs."""
    entities = dict(_ENTITY.findall(svg))
    svg = _DOCTYPE.sub(b"", svg)
    for name, value in entities.items():
        svg = svg.replace(b"&" + name + b";", value)
    return svg


def load_stamp(path: Path) -> np.ndarray | None:
    """RGBA pixels of a stamp (SVG rasterised with its longer side at 256 px)."""
    if path.suffix == ".svg":
        return svg_or_none(inline_entities(path.read_bytes()), str(path))
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


@register
class TuxPaintSource(Source):
    name = "tuxpaint"
    license = "GPL-2.0-or-later"
    install_hint = "apt-get install tuxpaint-stamps-default"

    def inputs(self) -> list[Path]:
        return [STAMPS]

    def plan(self, cfg: CorpusConfig) -> list[Unit]:
        table = load_mapping("tuxpaint")
        keep = concept_subset((row.wnid for row in table.values()), cfg)
        photo_sample = set(self.splits(cfg)["photo"]["sample"])
        units = []
        for kind, role, wanted in (("photo", "eval", lambda w: w not in photo_sample),
                                   ("photo", "sample", photo_sample.__contains__),
                                   ("drawing", "sample", lambda w: True)):
            groups: dict[str, list[str]] = defaultdict(list)
            for file, row in table.items():
                if row.extra[0] == kind and row.wnid in keep and wanted(row.wnid):
                    groups[row.wnid].append(file)
            assignments = allot(groups, cfg.variants(role), cfg.node_cap(role))
            inputs = [STAMPS / a[0] for a in assignments]
            extra = {"kind": kind} if kind == "drawing" or role == "eval" else {
                "kind": kind, "split": "concept"}  # unchanged drawing/eval units stay cached
            units += icon_units(self.name, role, assignments, inputs, extra)
        return units

    def splits(self, cfg: CorpusConfig) -> dict[str, Any]:
        """Photographed concepts per role: a seeded ``photo_sample_fraction`` to ``sample``."""
        table = load_mapping("tuxpaint")
        keep = concept_subset((row.wnid for row in table.values()), cfg)
        photos = sorted({r.wnid for r in table.values() if r.extra[0] == "photo" and r.wnid in keep})
        return {"photo": photo_split(photos, cfg.seed, cfg.photo_sample_fraction,
                                     eval_photos_elsewhere(), sample_photos_elsewhere())}

    def render(self, params: dict[str, Any]) -> Iterator[Item]:
        style = f"{params['kind']}/tuxpaint"
        for file, wnid, variants in params["items"]:
            rgba = load_stamp(STAMPS / file)
            if rgba is not None:
                yield from render_variants(rgba, file, wnid, variants, params, style,
                                           self.license)


def eval_photos_elsewhere() -> set[str]:
    """Nodes other sources photograph for evaluation (foolbox's ImageNet photos)."""
    return {r.wnid for r in load_mapping("foolbox").values() if r.extra[0] == "imagenet"}


def sample_photos_elsewhere() -> set[str]:
    """Nodes whose photos are labelled on anyway (scikit-image's sample photos)."""
    return {r.wnid for r in load_mapping("skimage").values()}


def photo_split(wnids: list[str], seed: int, fraction: float, force_eval: set[str],
                force_sample: set[str] = frozenset()) -> dict[str, list[str]]:
    """``{"sample": [...], "eval": [...]}``: the first ``fraction`` of the concepts in a seeded
    hash order go to sample, plus those in ``force_sample`` (their photos are labelled on through
    another source), except those in ``force_eval``; stable as concepts come and go."""
    rank = sorted(wnids, key=lambda w: hashlib.sha256(f"photo:{seed}:{w}".encode()).digest())
    chosen = (set(rank[: round(fraction * len(rank))]) | (force_sample & set(wnids))) - force_eval
    return {"sample": sorted(chosen), "eval": sorted(set(wnids) - chosen)}
