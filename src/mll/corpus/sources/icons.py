"""Emoji artwork: the five iconify sets (npm) and the Noto Color Emoji font (Debian).

One adapter serves every iconify set, parameterised by the set's name. Roles go by *style*, so
near-identical artwork of one concept never crosses roles: Noto (SVG and font) and Twemoji are
``train``, OpenMoji is ``sample``, Fluent (flat and 3D) is ``eval``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CorpusConfig
from ..mappings import load_mapping
from ..render import ICON_VARIANTS, place_icon
from ._paths import node_modules
from .base import SOURCES, Item, Source, Unit, chunks, register

logger = logging.getLogger(__name__)

EMOJI_ROLES = {"noto": "train", "noto-font": "train", "twemoji": "train", "openmoji": "sample",
               "fluent-emoji-flat": "eval", "fluent-emoji": "eval"}
NOTO_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
RENDER_SIDE = 256  # longer side of the RGBA picture the variants are cut from
UNIT_SIZE = 40


def concept_subset(wnids: Iterable[str], cfg: CorpusConfig) -> set[str]:
    """All nodes, or a seeded subset of ``cfg.max_concepts`` of them (the same for every set)."""
    wnids = sorted(set(wnids))
    if cfg.max_concepts is None:
        return set(wnids)
    rank = sorted(wnids, key=lambda w: hashlib.sha256(f"{cfg.seed}:{w}".encode()).digest())
    return set(rank[: cfg.max_concepts])


def allot(labels_by_node: dict[str, list[str]], n_variants: int,
          cap: int) -> list[tuple[str, str, list[int]]]:
    """``(label, wnid, variant indices)`` giving each node at most ``cap`` images.

    A node's pictures take turns, so a node with two pictures gets both in several variants
    before any picture gets a rare variant; labels are tried shortest first (``cat`` before
    ``cat-face``).
    """
    out = []
    for wnid in sorted(labels_by_node):
        labels = sorted(labels_by_node[wnid], key=lambda s: (len(s), s))
        per_label: dict[str, list[int]] = defaultdict(list)
        for j in range(min(cap, len(labels) * n_variants)):
            per_label[labels[j % len(labels)]].append(j // len(labels))
        out += [(label, wnid, per_label[label]) for label in labels if per_label[label]]
    return out


def icon_units(source: str, role: str, assignments: list[tuple[str, str, list[int]]],
               inputs: Iterable[Path], extra: dict[str, Any]) -> list[Unit]:
    return [Unit(source, f"{role}-{i}", {"role": role, "items": [list(a) for a in part], **extra},
                 tuple(str(p) for p in inputs))
            for i, part in enumerate(chunks(assignments, UNIT_SIZE))]


def plan_icons(source: str, role: str, available: set[str], cfg: CorpusConfig,
               inputs: Iterable[Path], extra: dict[str, Any]) -> list[Unit]:
    table = load_mapping("emoji")
    keep = concept_subset((row.wnid for row in table.values()), cfg)
    groups: dict[str, list[str]] = defaultdict(list)
    for slug, row in table.items():
        if slug in available and row.wnid in keep:
            groups[row.wnid].append(slug)
    assignments = allot(groups, cfg.variants(role), cfg.node_cap(role))
    return icon_units(source, role, assignments, inputs, extra)


def render_variants(rgba: np.ndarray, label: str, wnid: str, variants: list[int],
                    params: dict[str, Any], style: str, license: str) -> Iterator[Item]:
    if not (rgba[:, :, 3] > 8).any():
        logger.info("%s %s renders blank (a glyph the font lacks); skipped", style, label)
        return
    for v in variants:
        variant = ICON_VARIANTS[v]
        yield Item(place_icon(rgba, variant), label, wnid, params["role"], variant.tag, style,
                   license)


def svg_to_rgba(svg: bytes, side: int = RENDER_SIDE) -> np.ndarray:
    """Rasterise with the longer side at ``side`` px, keeping the aspect ratio."""
    import cairosvg
    from PIL import Image

    def draw(**size: int) -> Image.Image:
        return Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg, **size)))

    im = draw(output_width=side)  # the height follows the aspect ratio
    if im.height > im.width:
        im = draw(output_height=side)
    return np.asarray(im.convert("RGBA"))


def svg_or_none(svg: bytes, what: str) -> np.ndarray | None:
    """``svg_to_rgba``, or None for the few files cairo cannot draw at any size (fluent-emoji's
    ``umbrella`` fails with CAIRO_STATUS_NO_MEMORY); those pictures are left out with a warning."""
    try:
        return svg_to_rgba(svg)
    except MemoryError as exc:
        logger.warning("cannot render %s (%s); left out", what, exc)
        return None


@cache
def _iconify(icon_set: str) -> dict[str, Any]:
    return json.loads((node_modules() / "@iconify-json" / icon_set / "icons.json").read_text())


class IconifySource(Source):
    """One iconify emoji set: SVG bodies keyed by slug, rendered with cairosvg."""

    install_hint = "npm install @iconify-json/<set> (run make setup)"

    def __init__(self, icon_set: str) -> None:
        self.icon_set = icon_set
        self.name = f"iconify-{icon_set}"
        self.style = f"emoji/{icon_set}"

    def _dir(self) -> Path:
        return node_modules() / "@iconify-json" / self.icon_set

    def inputs(self) -> list[Path]:
        return [self._dir() / "icons.json", self._dir() / "info.json"]

    def plan(self, cfg: CorpusConfig) -> list[Unit]:
        data = _iconify(self.icon_set)
        plain_aliases = {a for a, spec in data.get("aliases", {}).items() if set(spec) == {"parent"}}
        license = json.loads((self._dir() / "info.json").read_text())["license"]["spdx"]
        role = EMOJI_ROLES[self.icon_set]
        return plan_icons(self.name, role, set(data["icons"]) | plain_aliases, cfg,
                          self.inputs(), {"license": license})

    def _svg(self, slug: str) -> bytes:
        data = _iconify(self.icon_set)
        while slug not in data["icons"]:
            slug = data["aliases"][slug]["parent"]
        icon = data["icons"][slug]
        w, h = icon.get("width", data.get("width", 16)), icon.get("height", data.get("height", 16))
        left, top = icon.get("left", 0), icon.get("top", 0)
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
               f'viewBox="{left} {top} {w} {h}" width="{w}" height="{h}">{icon["body"]}</svg>')
        return svg.encode()

    def render(self, params: dict[str, Any]) -> Iterator[Item]:
        for slug, wnid, variants in params["items"]:
            rgba = svg_or_none(self._svg(slug), f"{self.style} {slug}")
            if rgba is not None:
                yield from render_variants(rgba, slug, wnid, variants, params, self.style,
                                           params["license"])


for _set in ("noto", "twemoji", "openmoji", "fluent-emoji-flat", "fluent-emoji"):
    SOURCES.register(f"iconify-{_set}")(IconifySource(_set))


@register
class NotoFontSource(Source):
    """The Noto Color Emoji font drawn with Pillow: Noto's artwork through a different
    rasteriser (bitmap glyphs at 109 px), keyed by the slugs of the iconify Noto set."""

    name = "noto-font"
    style = "emoji/noto-font"
    license = "OFL-1.1"
    install_hint = "apt-get install fonts-noto-color-emoji"

    def _chars(self) -> Path:
        return node_modules() / "@iconify-json" / "noto" / "chars.json"

    def inputs(self) -> list[Path]:
        return [NOTO_FONT, self._chars()]

    def _codepoints(self) -> dict[str, str]:
        """slug -> emoji string, from iconify's ``codepoints-joined-by-dashes -> slug`` table."""
        chars = json.loads(self._chars().read_text())
        out: dict[str, str] = {}
        for seq, slug in sorted(chars.items(), key=lambda kv: (len(kv[0]), kv[0])):
            out.setdefault(slug, "".join(chr(int(cp, 16)) for cp in seq.split("-")))
        return out

    def plan(self, cfg: CorpusConfig) -> list[Unit]:
        return plan_icons(self.name, EMOJI_ROLES["noto-font"], set(self._codepoints()), cfg,
                          self.inputs(), {})

    def render(self, params: dict[str, Any]) -> Iterator[Item]:
        from PIL import Image, ImageDraw, ImageFont

        font = ImageFont.truetype(str(NOTO_FONT), size=109)
        codepoints = self._codepoints()
        for slug, wnid, variants in params["items"]:
            canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
            ImageDraw.Draw(canvas).text((8, 8), codepoints[slug], font=font, embedded_color=True)
            yield from render_variants(np.asarray(canvas), slug, wnid, variants, params,
                                       self.style, self.license)
