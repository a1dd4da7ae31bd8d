"""Plain records the hub hands out: input specs, head classes, model metadata.

They are frozen dataclasses so the CLI can print them as JSON and other stages can keep them
without holding a database session.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidParameterError
from ..images import resize, to_gray, to_rgb

KINDS = ("expert", "vlm")


@dataclass(frozen=True)
class InputSpec:
    """What a model's first layer expects: a square ``size``, 1 or 3 channels, normalisation.

    Pixels are scaled to [0, 1] and then normalised per channel as ``(x - mean) / std``.
    """

    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise InvalidParameterError(f"input channels must be 1 or 3, got {self.channels}")
        if self.size < 1:
            raise InvalidParameterError(f"input size must be positive, got {self.size}")
        for label, vals in (("mean", self.mean), ("std", self.std)):
            if len(vals) not in (1, self.channels):
                raise InvalidParameterError(
                    f"input {label} needs 1 or {self.channels} values, got {list(vals)}")
        if not all(math.isfinite(v) for v in self.mean + self.std):
            raise InvalidParameterError(
                f"input mean and std must be finite numbers, got {list(self.mean)}, {list(self.std)}")
        if any(s <= 0 for s in self.std):
            raise InvalidParameterError(f"input std must be positive, got {list(self.std)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        """From a stored or uploaded config; a missing key or a non-number is a clear error."""
        try:
            return cls(int(d["size"]), int(d["channels"]), tuple(map(float, d["mean"])),
                       tuple(map(float, d["std"])))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidParameterError):
                raise
            raise InvalidParameterError(
                f"input spec needs size, channels (whole numbers) and mean, std (lists of "
                f"numbers); got {d!r:.120} ({type(exc).__name__}: {exc})") from None

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "channels": self.channels, "mean": list(self.mean),
                "std": list(self.std)}

    def prepare(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Stack uint8 images into a float32 ``(N, C, size, size)`` batch for this model."""
        convert = to_gray if self.channels == 1 else to_rgb
        batch = np.stack([resize(convert(check_image(im)), self.size) for im in images])
        if self.channels == 1:
            batch = batch[:, :, :, None]
        x = batch.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, -1, 1, 1)
        return (x - mean) / std


def check_image(img: np.ndarray) -> np.ndarray:
    """The shared representation or a clear error: uint8 ``HxW`` or ``HxWx{3,4}``."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        kind = getattr(img, "dtype", type(img).__name__)
        raise InvalidParameterError(f"images must be uint8 numpy arrays, got {kind}")
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (3, 4)):
        raise InvalidParameterError(f"images must be HxW or HxWx3 arrays, got shape {img.shape}")
    return img


@dataclass(frozen=True)
class HeadClass:
    """One output of an expert and the graph node it answers for.

    ``score`` is the matcher's confidence (``None`` when a person set the node by hand);
    ``confirmed`` says a person reviewed it, or it is exact by construction (ImageNet wnids).
    """

    index: int
    name: str
    wnid: str | None = None
    score: float | None = None
    confirmed: bool = False


@dataclass(frozen=True)
class ModelInfo:
    """Everything the hub knows about one model, as stored."""

    id: str
    name: str
    kind: str
    family: str
    source: str
    license: str
    n_params: int
    latency_ms: float | None
    input_spec: InputSpec
    backbone: str | None
    content_hash: str
    artifact_digest: str
    artifact_bytes: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    created_at: str
    classes: tuple[HeadClass, ...] = ()
    labelled: bool = False
    labels: dict[str, Any] | None = field(default=None)

    @property
    def wnids(self) -> list[str | None]:
        return [c.wnid for c in self.classes]

    def summary(self) -> dict[str, Any]:
        """The short form ``mll hub list --json`` prints."""
        return {"id": self.id, "name": self.name, "kind": self.kind, "family": self.family,
                "classes": len(self.classes), "labelled": self.labelled,
                "backbone": self.backbone, "n_params": self.n_params,
                "latency_ms": self.latency_ms}

    def to_dict(self) -> dict[str, Any]:
        """The full record ``mll hub show --json`` prints: :meth:`summary` plus everything else,
        every head class with its node, match score and review state."""
        return self.summary() | {
            "source": self.source, "license": self.license,
            "input_spec": self.input_spec.to_dict(), "content_hash": self.content_hash,
            "artifact_digest": self.artifact_digest, "artifact_bytes": self.artifact_bytes,
            "config": self.config, "metrics": self.metrics, "created_at": self.created_at,
            "labels": self.labels, "n_classes": len(self.classes),
            "classes": [{"index": c.index, "name": c.name, "wnid": c.wnid, "score": c.score,
                         "confirmed": c.confirmed} for c in self.classes]}
