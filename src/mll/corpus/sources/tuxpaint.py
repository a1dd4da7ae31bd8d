"""Tux Paint's stamps (Debian ``tuxpaint-stamps-default``): one picture per concept, drawn or photographed.

The reviewed table says which stamps are photographic cut-outs and which are drawings. Photos go
to ``eval`` (real objects, a domain no expert trains on); drawings go to ``sample`` (more nodes
and another style for labelling). Both are RGBA cut-outs, so they get the icon variants: sizes,
backgrounds, flips and rotations.
"""

from __future__ import annotations

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
KIND_ROLES = {"photo": "eval", "drawing": "sample"}


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
        units = []
        for kind, role in KIND_ROLES.items():
            groups: dict[str, list[str]] = defaultdict(list)
            for file, row in table.items():
                if row.extra[0] == kind and row.wnid in keep:
                    groups[row.wnid].append(file)
            assignments = allot(groups, cfg.variants(role), cfg.node_cap(role))
            inputs = [STAMPS / a[0] for a in assignments]
            units += icon_units(self.name, role, assignments, inputs, {"kind": kind})
        return units

    def render(self, params: dict[str, Any]) -> Iterator[Item]:
        style = f"{params['kind']}/tuxpaint"
        for file, wnid, variants in params["items"]:
            rgba = load_stamp(STAMPS / file)
            if rgba is not None:
                yield from render_variants(rgba, file, wnid, variants, params, style,
                                           self.license)
