"""Image arrays as they travel between stages: uint8, ``HxW`` (gray) or ``HxWx3`` (RGB).

Adapters convert to their own input spec with these helpers, so every source and every model
agree on one representation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InvalidParameterError


def to_rgb(img: np.ndarray) -> np.ndarray:
    """HxWx3 uint8; gray is repeated, alpha is composited on white."""
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        rgb = img[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 3:
        return img
    raise InvalidParameterError(f"expected an HxW or HxWxC image array, got shape {img.shape}")


def to_gray(img: np.ndarray) -> np.ndarray:
    """HxW uint8 (ITU-R 601 luma)."""
    if img.ndim == 2:
        return img
    rgb = to_rgb(img).astype(np.float32)
    return np.clip(rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32) + 0.5, 0, 255).astype(
        np.uint8)


def resize(img: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (square side or (height, width)) with bilinear filtering."""
    from PIL import Image

    h, w = (size, size) if isinstance(size, int) else size
    if img.shape[:2] == (h, w):
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BILINEAR))


def load_image_file(path: str | Path) -> np.ndarray:
    """Decode an image file into the shared representation; clear error on bad files."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("L", "I;16", "I", "F", "1"):
                return np.asarray(im.convert("L"))
            return to_rgb(np.asarray(im.convert("RGBA")))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidParameterError(f"{path}: not a readable image ({exc})") from None
