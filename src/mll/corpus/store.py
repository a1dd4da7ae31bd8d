"""Content-addressed image storage: canonical pixels, their id, and immutable pack files.

An image's id is the sha256 of its canonical pixels, so the same picture from two sources (or
two builds) has one id and is stored once. Bytes live in append-once *pack* files, one per build
unit: small images (28x28 digits, clothes) as raw bytes, which are read with a memcpy, larger ones
as PNG, which is ~9x smaller for rendered emoji and decodes at ~0.6 ms per 224 px image
(docs/corpus.md has the measurements). A pack appears under its final name only once complete.
"""

from __future__ import annotations

import hashlib
import io
import mmap
import os
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..errors import InvalidParameterError
from ..images import to_rgb
from .records import CODEC_PNG, CODEC_RAW

RAW_MAX_PIXELS = 64 * 64  # below this a PNG decode costs more than the bytes it saves


def canonical(img: np.ndarray) -> np.ndarray:
    """The stored form of an image: C-contiguous uint8, ``HxW`` gray or ``HxWx3`` RGB.

    ``HxWx1`` becomes ``HxW`` and RGBA is composited on white, as everywhere in mll.
    """
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise InvalidParameterError(f"images must be uint8 arrays, got dtype {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    elif a.ndim == 3 and a.shape[2] == 4:
        a = to_rgb(a)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)) or 0 in a.shape:
        raise InvalidParameterError(f"expected an HxW or HxWx3 image, got shape {a.shape}")
    return np.ascontiguousarray(a)


def shape3(a: np.ndarray) -> tuple[int, int, int]:
    return (a.shape[0], a.shape[1], 1 if a.ndim == 2 else 3)


def image_id(img: np.ndarray) -> str:
    """sha256 hex of ``b"{H}x{W}x{C}:"`` followed by the canonical pixel bytes."""
    a = canonical(img)
    h, w, c = shape3(a)
    return hashlib.sha256(f"{h}x{w}x{c}:".encode() + a.tobytes()).hexdigest()


def encode(a: np.ndarray) -> tuple[int, bytes]:
    """``(codec, bytes)`` for a canonical array."""
    if a.shape[0] * a.shape[1] <= RAW_MAX_PIXELS:
        return CODEC_RAW, a.tobytes()
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", compress_level=6)
    return CODEC_PNG, buf.getvalue()


def decode(codec: int, data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    h, w, c = shape
    if codec == CODEC_RAW:
        arr = np.frombuffer(data, dtype=np.uint8).copy()
        return arr.reshape((h, w) if c == 1 else (h, w, c))
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im.convert("L" if c == 1 else "RGB"))
    if arr.shape[:2] != (h, w):
        raise InvalidParameterError(f"stored image has shape {arr.shape}, index says {shape}")
    return arr


class PackWriter:
    """Collects encoded images for one pack; :meth:`publish` writes the file atomically."""

    def __init__(self, directory: Path, name: str) -> None:
        self.name = name
        self._dest = directory / f"{name}.pack"
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, data: bytes) -> tuple[int, int]:
        """Queue ``data``; returns its ``(offset, length)`` in the pack."""
        offset = self._size
        self._chunks.append(data)
        self._size += len(data)
        return offset, len(data)

    @property
    def empty(self) -> bool:
        return self._size == 0

    def publish(self) -> None:
        with atomic_path(self._dest) as tmp, open(tmp, "wb") as fh:
            for chunk in self._chunks:
                fh.write(chunk)
        self._chunks.clear()


class PackReader:
    """Memory-maps pack files on first use; reads copy a slice of the map."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._maps: dict[str, mmap.mmap] = {}

    def _map(self, pack: str) -> mmap.mmap:
        if pack not in self._maps:
            with open(self.directory / f"{pack}.pack", "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                self._maps[pack] = mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ)
        return self._maps[pack]

    def read(self, pack: str, offset: int, length: int) -> bytes:
        return self._map(pack)[offset: offset + length]

    def close(self) -> None:
        for m in self._maps.values():
            m.close()
        self._maps.clear()
