"""Renderings of one picture: the canonical image plus simple, named variants.

Icons (emoji, Tux Paint cut-outs and drawings) are RGBA pictures placed on a 224 px canvas;
photos are RGB and get crops and flips. Each variant's tag is stored as the record's
``augmentation``; ``none`` is the canonical rendering. Variants are used in list order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..images import to_gray

CANVAS = 224
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class IconVariant:
    tag: str
    box: int = 184  # the picture is fitted into a box of this side, aspect kept
    background: tuple[int, int, int] = WHITE
    flip: bool = False
    rotate: float = 0.0  # degrees, counter-clockwise
    shift: tuple[int, int] = (0, 0)  # of the box centre from the canvas centre (x, y)
    lowres: int = 0  # if set, the picture is reduced to this side and enlarged again (blur)


ICON_VARIANTS = (
    IconVariant("none"),
    IconVariant("box120", box=120),
    IconVariant("flip", flip=True),
    IconVariant("box152+bg-gray", box=152, background=(218, 218, 218)),
    IconVariant("box160+rot15", box=160, rotate=15.0),
    IconVariant("box96+shift-48,-48", box=96, shift=(-48, -48)),
    IconVariant("bg-cream", background=(255, 236, 200)),
    IconVariant("lowres48", lowres=48),
    IconVariant("box144+flip+bg-blue", box=144, flip=True, background=(208, 226, 255)),
    IconVariant("box160+rot-20", box=160, rotate=-20.0),
)


def crop_to_alpha(rgba: np.ndarray, threshold: int = 8) -> np.ndarray:
    """The smallest box holding every visible pixel (pictures come with arbitrary margins)."""
    ys, xs = np.nonzero(rgba[:, :, 3] > threshold)
    if len(ys) == 0:
        return rgba
    return rgba[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def place_icon(rgba: np.ndarray, v: IconVariant) -> np.ndarray:
    """``HxWx3`` uint8: the RGBA picture fitted into ``v.box`` on a ``CANVAS`` background."""
    pic = Image.fromarray(crop_to_alpha(rgba), "RGBA")
    if v.flip:
        pic = pic.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if v.rotate:
        pic = pic.rotate(v.rotate, resample=Image.Resampling.BICUBIC, expand=True)
    scale = v.box / max(pic.size)
    size = (max(1, round(pic.width * scale)), max(1, round(pic.height * scale)))
    if v.lowres:
        small = v.lowres / max(pic.size)
        pic = pic.resize((max(1, round(pic.width * small)), max(1, round(pic.height * small))),
                         Image.Resampling.BOX)
    pic = pic.resize(size, Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (CANVAS, CANVAS), (*v.background, 255))
    x = (CANVAS - size[0]) // 2 + v.shift[0]
    y = (CANVAS - size[1]) // 2 + v.shift[1]
    canvas.alpha_composite(pic, (x, y))
    return np.asarray(canvas.convert("RGB"))


@dataclass(frozen=True)
class PhotoVariant:
    tag: str
    crop: float = 1.0  # central fraction kept
    flip: bool = False
    gray: bool = False


PHOTO_VARIANTS = (
    PhotoVariant("none"),
    PhotoVariant("flip", flip=True),
    PhotoVariant("crop80", crop=0.8),
    PhotoVariant("crop80+flip", crop=0.8, flip=True),
    PhotoVariant("gray", gray=True),
    PhotoVariant("crop60", crop=0.6),
    PhotoVariant("crop60+flip", crop=0.6, flip=True),
)
PHOTO_SIDE = 224  # longer side of stored photos (they are only ever shrunk)


def photo_variant(rgb: np.ndarray, v: PhotoVariant) -> np.ndarray:
    """The photo cropped, flipped, shrunk to ``PHOTO_SIDE`` and optionally gray."""
    h, w = rgb.shape[:2]
    ch, cw = max(1, round(h * v.crop)), max(1, round(w * v.crop))
    top, left = (h - ch) // 2, (w - cw) // 2
    pic = Image.fromarray(np.ascontiguousarray(rgb[top: top + ch, left: left + cw]))
    if v.flip:
        pic = pic.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    scale = PHOTO_SIDE / max(pic.size)
    if scale < 1:
        pic = pic.resize((max(1, round(pic.width * scale)), max(1, round(pic.height * scale))),
                         Image.Resampling.LANCZOS)
    out = np.asarray(pic)
    return to_gray(out) if v.gray else out


def rendering_digest() -> str:
    """A digest of every rendering parameter above; it is part of each build unit's key, so
    editing a variant re-renders the units instead of reusing stale images."""
    spec = repr((CANVAS, WHITE, ICON_VARIANTS, PHOTO_VARIANTS, PHOTO_SIDE))
    return hashlib.sha256(spec.encode()).hexdigest()[:16]
