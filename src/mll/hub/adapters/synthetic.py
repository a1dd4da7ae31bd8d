"""Synthetic experts: a real expert's outputs on a subset of its heads, put through a seeded
transformation, so a synthetic hub's models can be run on any image, not only scored on labels.

The artifact is a small JSON spec (``transform``) naming the source model (id and content hash),
the source heads kept, and the transformation: the source's probabilities are first brought to
the form a label stores them in (:func:`labelled_form`, float16 then steps of 1/255, top-32 heads
for wide experts), so the transformation sees the same numbers at label time (read from the
source's label) and at run time (the source run on the image); then, on the kept heads,

    logits = log(p + 0.05) / temperature + bias[head] + noise_sd * z(seed, image id, head)

and a softmax. ``z`` is a standard normal drawn from a hash of the model's seed, the image id
(sha256 of its canonical pixels, as the corpus names images) and the head, so a model's output on
an image is the same every time and on every machine. The source itself is not bit-exact: its
float outputs move in the last bits with batch size and backbone path, which can move a stored
step by one (1/255); the 0.05 added before the log keeps that to at most 0.08 on a logit, so
running a synthetic expert gives its label's outputs to about 0.01. Nothing looks at the image's
true class:
a synthetic expert is a noisier, re-calibrated copy of its source on fewer heads.

The hub loads the source model and hands it over (``Hub.load``); ``hub add`` refuses the family:
synthetic experts are written by ``mll.bench.synthetic``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InvalidParameterError, NotBuiltError
from . import families
from .base import Adapter, Expert, PackContext, Packed, softmax

FAMILY = "synthetic"
VERSION = 1
SMOOTH = 0.05  # added before the log: one label step (1/255) moves a logit by at most 0.08
STEPS = 255  # the label layout's probability steps (mll.labels.store.STEPS)
TOP_M = 32  # heads a label keeps per image for experts wider than 2 * TOP_M (mll.labels.store)
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def make_spec(*, source_id: str, source_hash: str, source_classes: int, heads: Sequence[int],
              seed: int, temperature: float, noise_sd: float, bias: Sequence[float]) -> dict:
    """The JSON spec of one synthetic expert (what its artifact holds)."""
    return {"format": "mll-synthetic-expert", "version": VERSION, "source_id": source_id,
            "source_hash": source_hash, "source_classes": int(source_classes),
            "heads": [int(h) for h in heads], "seed": int(seed),
            "temperature": float(temperature), "noise_sd": float(noise_sd),
            "bias": [round(float(b), 6) for b in bias]}


def spec_bytes(spec: dict) -> bytes:
    return json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()


def read_spec(data: bytes) -> dict:
    """A checked spec, or one clear error naming what is wrong."""
    try:
        spec = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameterError(f"synthetic expert spec is not JSON ({exc})") from None
    if not isinstance(spec, dict) or spec.get("format") != "mll-synthetic-expert":
        raise InvalidParameterError("synthetic expert spec: not an mll-synthetic-expert document")
    if spec.get("version") != VERSION:
        raise InvalidParameterError(f"synthetic expert spec: version {spec.get('version')!r} "
                                    f"is not {VERSION}")
    heads, bias, n = spec.get("heads"), spec.get("bias"), spec.get("source_classes")
    if not isinstance(n, int) or n < 1 or not isinstance(heads, list) or not heads or not all(
            isinstance(h, int) and 0 <= h < n for h in heads) or len(set(heads)) != len(heads):
        raise InvalidParameterError("synthetic expert spec: heads must be distinct source head "
                                    "indices below source_classes")
    if not isinstance(bias, list) or len(bias) != len(heads):
        raise InvalidParameterError("synthetic expert spec: bias needs one number per head")
    for key in ("temperature", "noise_sd"):
        value = spec.get(key)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (
                key == "temperature" and value == 0):
            raise InvalidParameterError(f"synthetic expert spec: {key} must be a finite "
                                        f"{'positive' if key == 'temperature' else 'non-negative'}"
                                        f" number, got {value!r}")
    if not isinstance(spec.get("seed"), int) or not isinstance(spec.get("source_id"), str) \
            or not isinstance(spec.get("source_hash"), str):
        raise InvalidParameterError("synthetic expert spec: seed, source_id and source_hash "
                                    "are required")
    return spec


def labelled_form(probs: np.ndarray) -> np.ndarray:
    """Expert probabilities as a published label gives them back (mll.labels.store: float16,
    then rounded to 1/255 steps; past 2 * TOP_M heads only each image's top TOP_M are kept)."""
    probs = np.asarray(probs, np.float32)
    if probs.shape[1] <= 2 * TOP_M:
        half = probs.astype(np.float16).astype(np.float32)
        return np.rint(np.clip(half, 0, 1) * STEPS).astype(np.float32) / STEPS
    index = np.argsort(-probs, axis=1)[:, :TOP_M]
    top = np.take_along_axis(probs, index, axis=1).astype(np.float16).astype(np.float32)
    out = np.zeros_like(probs)
    np.put_along_axis(out, index, np.rint(np.clip(top, 0, 1) * STEPS) / STEPS, axis=1)
    return out


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (x ^ (x >> np.uint64(31))) & _MASK


def image_keys(image_ids: Sequence[str]) -> np.ndarray:
    """Each image id's 64-bit key (blake2b of the id), the image's part of the noise seed."""
    return np.array([int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest(),
                                    "little") for i in image_ids], dtype=np.uint64)


def noise(seed: int, image_ids: Sequence[str] | np.ndarray, heads: int) -> np.ndarray:
    """(images, heads) standard normals, a pure function of (seed, image id, head); ``image_ids``
    may be given as :func:`image_keys` already."""
    img = image_ids if isinstance(image_ids, np.ndarray) and image_ids.dtype == np.uint64 \
        else image_keys(image_ids)
    base = _mix(img ^ _mix(np.uint64(seed & 0xFFFFFFFFFFFFFFFF)))
    head = np.arange(2 * heads, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = _mix(base[:, None] + (head[None, :] + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))
    u = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)
    u1, u2 = u[:, :heads], u[:, heads:]
    return (np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)).astype(np.float32)


def transform(source_probs: np.ndarray, spec: dict,
              image_ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """The synthetic expert's (N, heads) probabilities from its source's labelled-form
    probabilities (N, source classes) on images ``image_ids``."""
    heads = spec["heads"]
    p = np.asarray(source_probs, np.float32)[:, heads]
    logits = np.log(p + SMOOTH) / spec["temperature"]
    logits += np.asarray(spec["bias"], np.float32)
    if len(image_ids):
        logits += spec["noise_sd"] * noise(spec["seed"], image_ids, len(heads))
    return softmax(logits, axis=1)


@families.register(FAMILY)
class SyntheticExpert(Expert):
    """A synthetic expert; :meth:`bind` gives it its source model (the hub does on ``load``)."""

    family = FAMILY
    # no SAFE_FORMAT: not a format users give ``hub add`` (``pack`` refuses it)

    def __init__(self, classes: Sequence[str], spec: dict) -> None:
        super().__init__(classes)
        if len(spec["heads"]) != len(self.classes):
            raise InvalidParameterError(f"synthetic expert: {len(self.classes)} classes but the "
                                        f"spec keeps {len(spec['heads'])} heads")
        self.spec = spec
        self.source: Expert | None = None

    @property
    def source_id(self) -> str:
        return self.spec["source_id"]

    def bind(self, source: Adapter, content_hash: str) -> None:
        """Attach the source model; refused when it is not the one the spec names."""
        if content_hash != self.spec["source_hash"] or not isinstance(source, Expert):
            raise InvalidParameterError(f"synthetic expert {self.id or ''}: its source must be "
                                        f"the expert with content hash "
                                        f"{self.spec['source_hash'][:12]}, got {content_hash[:12]}")
        if len(source.classes) != self.spec["source_classes"]:
            raise InvalidParameterError(f"synthetic expert {self.id or ''}: source has "
                                        f"{len(source.classes)} heads, the spec says "
                                        f"{self.spec['source_classes']}")
        self.source = source
        self.input_spec = source.input_spec
        self.n_params = source.n_params

    @classmethod
    def pack(cls, model: Any, options: dict[str, Any], ctx: PackContext) -> Packed:
        raise InvalidParameterError("synthetic experts are written by mll.bench.synthetic "
                                    "(benchmarks/scale.py, benchmarks/distractors.py), not added")

    @classmethod
    def from_artifact(cls, path: Path, config: dict[str, Any],
                      classes: Sequence[str] = ()) -> SyntheticExpert:
        return cls(classes, read_spec(Path(path).read_bytes()))

    def predict_proba(self, images: Sequence[np.ndarray],
                      batch_size: int | None = None) -> np.ndarray:
        """The source's outputs on ``images``, in labelled form, through the transformation."""
        from ...corpus.store import image_id

        if self.source is None:
            raise NotBuiltError(f"synthetic expert {self.id or ''} has no source model bound; "
                                f"load it with Hub.load")
        images = list(images)
        if not images:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        probs = labelled_form(self.source.predict_proba(images, batch_size))
        return transform(probs, self.spec, [image_id(im) for im in images])
