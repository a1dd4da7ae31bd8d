"""The interface every model family implements, and what a family hands the hub on ``add``.

Experts::

    adapter.classes, adapter.wnids, adapter.input_spec, adapter.backbone
    adapter.predict_proba(images) -> (N, C) float32, rows sum to 1
    adapter.predict_proba_from_features(features) -> (N, C)     # when adapter.backbone is set

VLMs::

    adapter.encode_images(images) -> (N, D) L2-normalised
    adapter.encode_texts(texts) -> (M, D) L2-normalised
    adapter.similarity(image_emb, text_emb) -> (N, M) cosine similarities
    adapter.zero_shot_proba(images, texts) -> softmax(logit_scale * similarity)
    adapter.encode_images_from_features(features)               # when adapter.backbone is set

Images are uint8 ``HxW`` or ``HxWx3`` arrays (``mll.images``). A family is a subclass registered in
``mll.hub.adapters.families`` with two class methods: ``pack`` turns what a user gives ``hub add``
into one artifact file plus a JSON config, and ``from_artifact`` rebuilds the adapter from them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ...errors import InvalidParameterError
from ...limits import check
from ..spec import InputSpec, check_image

logger = logging.getLogger(__name__)


def read_config(path: Path) -> dict[str, Any]:
    """A model directory's JSON config file (``config.json`` and the like), bounded and checked.

    Such files come with the weights from whoever made the model, so they are as hostile as the
    weights: a size above ``Limits.max_metadata_bytes``, bytes that are not UTF-8 JSON, or a
    document that is not an object is one clear error naming the file.
    """
    check(f"{path.name} size in bytes", path.stat().st_size, "max_metadata_bytes")
    try:
        config = json.loads(path.read_bytes())
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidParameterError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise InvalidParameterError(f"{path} must hold a JSON object")
    return config


@dataclass(frozen=True)
class Packed:
    """A model ready to store: one artifact file, the config that rebuilds it, and defaults.

    ``classes``/``wnids`` are set when the format itself names its head classes (ImageNet heads,
    trained bundles); ``wnids`` only when the mapping is exact by construction.
    """

    path: Path
    config: dict[str, Any]
    name: str
    classes: tuple[str, ...] | None = None
    wnids: tuple[str, ...] | None = None
    source: str = ""
    license: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PackContext:
    """What a family may use while packing: a scratch directory and the hub's text cache."""

    workdir: Path
    text_cache: Path | None = None

    def text_encoder(self, name: str):
        """The named ``mll.text`` encoder, through the hub's embedding cache when there is one."""
        from ...text import EmbeddingCache, get_text_encoder

        encoder = get_text_encoder(name)
        return encoder if self.text_cache is None else EmbeddingCache(self.text_cache, encoder)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Probabilities as float32, the dtype every adapter returns."""
    from scipy.special import softmax as _softmax

    return _softmax(logits, axis=axis).astype(np.float32)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def check_options(family: str, given: dict[str, Any] | None,
                  defaults: dict[str, Any]) -> dict[str, Any]:
    """Family options with defaults filled in; unknown keys are an error, not silently ignored."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none"
        raise InvalidParameterError(
            f"family {family!r} has no option(s) {unknown}; its options are: {allowed}")
    for key, value in given.items():
        _check_kind(family, key, value, defaults[key])
    return {**defaults, **given}


def _check_kind(family: str, key: str, value: Any, default: Any) -> None:
    """An option whose default is a number or text must be given as one (``-o top=ten`` is an
    error here, not a ``ValueError`` deep in the family); ``None`` defaults are checked by the
    family, which knows what they take."""
    if default is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value))
    else:
        ok = isinstance(value, type(default))
    if not ok:
        kind = {bool: "true or false", int: "a whole number", float: "a number",
                str: "text"}.get(type(default), type(default).__name__)
        raise InvalidParameterError(
            f"family {family!r} option {key!r} must be {kind} (default {default!r}), got "
            f"{value!r}")


class Adapter:
    """What every loaded model has. ``id`` is set when it comes from a hub."""

    family: ClassVar[str]
    kind: ClassVar[str]
    OPTIONS: ClassVar[dict[str, Any]] = {}
    NAMED: ClassVar[bool] = False  # ``pack`` takes a name (e.g. a variant), not a path
    # What ``hub add`` and selection know of a family without loading it (one declaration each):
    SUFFIXES: ClassVar[tuple[str, ...]] = ()  # files with these suffixes are this family's
    SAFE_FORMAT: ClassVar[str] = ""  # how to give it a model, named when a pickle is refused
    PREFERRED_PATCH: ClassVar[bool] = False  # the VLM preferred for classes no expert covers

    @classmethod
    def claims_directory(cls, config: dict[str, Any]) -> bool:
        """Whether a directory whose ``config.json`` holds ``config`` is this family's model."""
        return False

    id: str | None = None
    backbone: str | None = None
    input_spec: InputSpec
    n_params: int = 0

    @classmethod
    def pack(cls, model: Any, options: dict[str, Any], ctx: PackContext) -> Packed:
        """Turn ``model`` (a path or an object) into a stored form, written under ``ctx.workdir``."""
        raise NotImplementedError

    @classmethod
    def from_artifact(cls, path: Path, config: dict[str, Any],
                      classes: Sequence[str] = ()) -> Adapter:
        raise NotImplementedError

    @classmethod
    def rebuild(cls, path: Path, config: dict[str, Any], classes: Sequence[str], model_id: str,
                wnids: Sequence[str | None] = ()) -> Adapter:
        """A stored model with its identity: ``from_artifact`` plus its id and, for an expert,
        its heads' nodes. The hub and a saved predictor both load models this way."""
        adapter = cls.from_artifact(path, config, list(classes))
        adapter.id = model_id
        if isinstance(adapter, Expert):
            adapter.wnids = list(wnids)
        return adapter

    @classmethod
    def check_artifact(cls, path: Path, config: dict[str, Any]) -> None:
        """Re-check a stored artifact's content beyond its hash (``hub verify``); raise an
        :class:`~mll.errors.MLLError` naming the problem. Families whose checks live in
        ``from_artifact`` need nothing more."""

    def _backbone_features(self, images: Sequence[np.ndarray],
                           batch_size: int | None) -> np.ndarray:
        from ..backbones import FORWARD_BATCH, get_backbone

        return get_backbone(self.backbone).features(list(images), batch_size or FORWARD_BATCH)

    def _require_backbone(self, what: str) -> None:
        if self.backbone is None:
            raise InvalidParameterError(
                f"{self.family} model {self.id or ''} has no shared backbone; call {what} on images")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id or ''} family={self.family}>"


class Expert(Adapter):
    """A classifier with its own head classes."""

    kind = "expert"

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = list(classes)
        self.wnids: list[str | None] = [None] * len(self.classes)

    def predict_proba(self, images: Sequence[np.ndarray],
                      batch_size: int | None = None) -> np.ndarray:
        """``batch_size`` images per forward pass (default: 8 on a backbone, else 32)."""
        images = [check_image(im) for im in images]
        if self.backbone is not None:
            return self.predict_proba_from_features(self._backbone_features(images, batch_size))
        if not images:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        batch_size = batch_size or 32
        return np.concatenate([self._proba_batch(self.input_spec.prepare(images[i: i + batch_size]))
                               for i in range(0, len(images), batch_size)])

    def predict_proba_from_features(self, features: np.ndarray) -> np.ndarray:
        """Probabilities from pooled backbone features (``FeatureCache``), no image needed."""
        self._require_backbone("predict_proba")
        return self._proba_features(np.asarray(features, dtype=np.float32))

    def _proba_batch(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _proba_features(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class VLM(Adapter):
    """An image and a text encoder into one space."""

    kind = "vlm"
    logit_scale: float = 100.0
    dim: int = 0

    def encode_images(self, images: Sequence[np.ndarray],
                      batch_size: int | None = None) -> np.ndarray:
        """``batch_size`` images per forward pass (default: 8 on a backbone, else 32)."""
        images = [check_image(im) for im in images]
        if self.backbone is not None:
            return self.encode_images_from_features(self._backbone_features(images, batch_size))
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch_size = batch_size or 32
        return l2_normalise(np.concatenate(
            [self._embed_batch(self.input_spec.prepare(images[i: i + batch_size]))
             for i in range(0, len(images), batch_size)]))

    def encode_images_from_features(self, features: np.ndarray) -> np.ndarray:
        self._require_backbone("encode_images")
        return l2_normalise(self._embed_features(np.asarray(features, dtype=np.float32)))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise InvalidParameterError("encode_texts takes a list of strings")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(self._embed_texts(texts))

    @staticmethod
    def similarity(image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        """Cosine similarities ``(N, M)`` of normalised embeddings."""
        return np.asarray(image_emb, dtype=np.float32) @ np.asarray(text_emb, dtype=np.float32).T

    def zero_shot_proba(self, images: Sequence[np.ndarray], texts: Sequence[str]) -> np.ndarray:
        """P(text | image) over ``texts``, CLIP-style."""
        return softmax(self.logit_scale * self.similarity(self.encode_images(images),
                                                          self.encode_texts(texts)))

    def _embed_batch(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _embed_features(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class TextTowerMixin:
    """VLMs whose text side is an ``mll.text`` encoder (ConSE, LiT); the hub may swap in its cache."""

    text_encoder: Any

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        return self.text_encoder.encode(texts)

    @staticmethod
    def default_text_encoder(name: str):
        from ...text import get_text_encoder

        return get_text_encoder(name)
