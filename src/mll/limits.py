"""Bounds on what untrusted input may cost: pixels, bytes, compression ratios, shapes.

Every file mll reads may come from someone else (a shared hub, a predictor passed around), so each
reader checks its input against these limits before allocating memory for it. The operator sets
them with environment variables (``MLL_MAX_IMAGE_PIXELS`` and so on, one per field) or by passing
an explicit :class:`Limits` where an API takes one; the defaults allow every real model and image
the project knows of with a wide margin and refuse files crafted to exhaust memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from .errors import InvalidParameterError, LimitExceededError


@dataclass(frozen=True)
class Limits:
    """Upper bounds, each overridable by ``MLL_<FIELD NAME IN CAPITALS>``."""

    #: Decoded pixels of one image (width x height); 40 MP is a 7300x5500 photograph.
    max_image_pixels: int = 40_000_000
    #: Bytes of one image file on disk.
    max_image_bytes: int = 100 * 1024**2
    #: Bytes of one model (a file, a directory's files, or a member unpacked from a zip).
    max_model_bytes: int = 2 * 1024**3
    #: Uncompressed-to-compressed ratio of one zip member larger than 1 MiB (weights compress
    #: about 1.1x, JSON about 10x; a zip bomb thousands of times).
    max_zip_ratio: float = 100.0
    #: Side of a model's declared image input, in pixels.
    max_input_side: int = 1024
    #: Parameters a declared architecture may allocate (float32: 4 bytes each).
    max_model_params: int = 500_000_000
    #: Output classes of one model, and classes of one task.
    max_classes: int = 100_000
    #: Bytes of a class-list file.
    max_class_file_bytes: int = 16 * 1024**2
    #: Bytes of metadata inside a model or predictor file (a predictor's manifest, the tokenizer
    #: and config files a bundle carries); a large CLIP tokenizer is about 20 MB.
    max_metadata_bytes: int = 64 * 1024**2
    #: Images of one task solved over HTTP (files sent, or files in the zip sent).
    max_solve_images: int = 1000
    #: Seconds an LLM endpoint may take for one answer, retries included.
    llm_deadline_seconds: float = 120.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        """The defaults, overridden by any ``MLL_MAX_*`` / ``MLL_LLM_DEADLINE_SECONDS`` set."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(f"MLL_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            kind = float if f.type in ("float", float) else int
            try:
                value = kind(float(raw)) if kind is int else kind(raw)
            except ValueError:
                raise InvalidParameterError(
                    f"MLL_{f.name.upper()}={raw!r} is not a number; unset it or give e.g. "
                    f"{getattr(cls, f.name)}") from None
            if value <= 0:
                raise InvalidParameterError(f"MLL_{f.name.upper()} must be positive, got {raw!r}")
            values[f.name] = value
        return cls(**values)


def current() -> Limits:
    """The limits in force now (read from the environment on every call, so tests can set it)."""
    return Limits.from_env()


def check(what: str, value: float, limit_name: str, limits: Limits | None = None) -> None:
    """Raise :class:`LimitExceededError` when ``value`` exceeds the named limit."""
    limit = getattr(limits or current(), limit_name)
    if value > limit:
        raise LimitExceededError(
            f"{what} is {value:,.0f}, above the limit of {limit:,.0f}; if the input is trusted, "
            f"raise it with MLL_{limit_name.upper()}")
