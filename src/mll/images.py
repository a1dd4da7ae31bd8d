"""Image arrays as they travel between stages: uint8, ``HxW`` (gray) or ``HxWx3`` (RGB).

Adapters convert to their own input spec with these helpers, so every source and every model
agree on one representation.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import InvalidParameterError, LimitExceededError, MLLError
from .limits import Limits
from .limits import check as check_limit
from .limits import current as current_limits


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


def load_image_file(path: str | Path, limits: Limits | None = None) -> np.ndarray:
    """Decode an image file into the shared representation; clear error on bad or huge files.

    Images come from users and shared folders, so the file size and the pixel count (read from the
    header, before anything is decoded) are checked against :mod:`mll.limits` first: a small PNG
    can declare 30000x30000 pixels. Deeper-than-8-bit images are scaled to 8 bit by their range.
    """
    from PIL import Image

    path = Path(path)
    limits = limits or current_limits()
    if not path.is_file():
        raise InvalidParameterError(f"{path}: not a readable image (not a regular file)")
    check_limit(f"{path}: file size in bytes", path.stat().st_size, "max_image_bytes", limits)
    try:
        with warnings.catch_warnings():
            # mll checks the pixel count itself (below), against the operator's limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                check_limit(f"{path}: {width}x{height} image, pixel count", width * height,
                            "max_image_pixels", limits)
                bits = _source_bits(im)  # before load(), which drops the decoder's tile list
                im.load()
                return _to_array(im, bits)
    except MLLError:
        raise
    except Image.DecompressionBombError as exc:
        raise LimitExceededError(f"{path}: image refused before decoding ({exc})") from None
    except MemoryError:
        raise LimitExceededError(f"{path}: not enough memory to decode this image") from None
    except Exception as exc:  # noqa: BLE001 - decoders of hostile bytes fail in many ways
        raise InvalidParameterError(f"{path}: not a readable image "
                                    f"({type(exc).__name__}: {exc})") from None


def _to_array(im, bits: int | None) -> np.ndarray:
    """A decoded Pillow image as uint8 gray or RGB; 16- and 32-bit gray scaled, not clipped."""
    if im.mode in ("L", "1"):
        return np.asarray(im.convert("L"))
    if im.mode.startswith("I") or im.mode == "F":
        return _scale_to_8bit(np.asarray(im), bits)
    return to_rgb(np.asarray(im.convert("RGBA")))


def _source_bits(im) -> int | None:
    """Bits per sample the file stored, when its decoder says (16 for I;16 PNG, TIFF, PGM)."""
    if "16" in im.mode:
        return 16
    raw = [t.args for t in getattr(im, "tile", None) or []]
    if any(isinstance(a, str) and "16" in a for a in raw) or im.format in ("PPM", "PGM"):
        return 16
    return None


def _scale_to_8bit(values: np.ndarray, bits: int | None) -> np.ndarray:
    """Map samples to 0..255 by their type's range.

    ``bits`` is the stored depth when known; otherwise the smallest of 8, 16 or 32 bits that holds
    the largest value is assumed (beyond 32 bits, the largest value is white), and floats within
    [0, 1] are taken as fractions of white.
    """
    v = values.astype(np.float64)
    if v.size == 0:
        return v.astype(np.uint8)
    v = np.where(np.isfinite(v), v, 0.0)
    top = float(v.max())
    if bits is not None:
        full = 2.0**bits - 1
    elif values.dtype.kind == "f" and top <= 1.0:
        full = 1.0
    else:
        full = next((2.0**b - 1 for b in (8, 16, 32) if top <= 2.0**b - 1), max(top, 1.0))
    return np.clip(v * (255.0 / full) + 0.5, 0, 255).astype(np.uint8)
