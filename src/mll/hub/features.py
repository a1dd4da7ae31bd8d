"""Backbone features computed once per image and reused by every model on that backbone.

Lite0 runs about 22 images/s on 2 cores; a hub with 20 heads on it would otherwise pay that 20
times per image. Features are stored per backbone (id plus weights digest) in shards under
``<hub>/cache/features/``: ``<shard>.feats.npy`` (float16 rows) and ``<shard>.keys.npy`` (the image
keys, normally the corpus image id, i.e. the content hash of its pixels). The keys file is written
last, so a shard is visible only once complete; concurrent writers each write their own shards.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .._io import atomic_path, progress
from ..config import HubPaths, resolve_hub
from ..errors import InvalidParameterError
from .backbones import backbones, get_backbone

logger = logging.getLogger(__name__)

Loader = Callable[[list[str]], list[np.ndarray]]


def image_key(img: np.ndarray) -> str:
    """The content hash of an image array (shape, dtype and pixels)."""
    h = hashlib.sha256(f"{img.shape}{img.dtype}".encode())
    h.update(np.ascontiguousarray(img).tobytes())
    return h.hexdigest()


def model_outputs(model, features: Callable[[str], np.ndarray],
                  images: Callable[[], Sequence[np.ndarray]],
                  batch_size: int | None = None) -> np.ndarray:
    """What labelling, the benchmark and a predictor read from a model: expert probabilities or
    VLM image embeddings. A model on a shared backbone starts from ``features(backbone_id)``, so
    the caller computes (or caches) them once for every model on it; others run on ``images()``."""
    if model.backbone is not None:
        feats = features(model.backbone)
        return (model.predict_proba_from_features(feats) if model.kind == "expert"
                else model.encode_images_from_features(feats))
    run = model.predict_proba if model.kind == "expert" else model.encode_images
    return run(images(), batch_size)


class FeatureCache:
    """``cache.get(backbone_id, keys=ids, load=corpus.load)`` -> ``(N, dim)`` float32.

    Only images whose features are missing are loaded, ``batch_size`` at a time; a shard
    is written every ``shard_size`` images, so an interrupted run keeps what it computed.
    """

    def __init__(self, root: str | Path, *, batch_size: int = 32, shard_size: int = 1024,
                 show_progress: bool | None = None) -> None:
        self.root = Path(root)
        self.batch_size, self.shard_size = batch_size, shard_size
        self.show_progress = show_progress
        self._index: dict[str, dict[str, tuple[int, int]]] = {}
        self._shards: dict[str, list[Path]] = {}

    @classmethod
    def for_hub(cls, hub: str | Path | None = None, **kwargs) -> FeatureCache:
        return cls(HubPaths(resolve_hub(hub)).cache / "features", **kwargs)

    # -- public ---------------------------------------------------------------------------------
    def get(self, backbone: str, images: Sequence[np.ndarray] | None = None, *,
            keys: Sequence[str] | None = None, load: Loader | None = None) -> np.ndarray:
        """Features of the given images, computing and storing only the missing ones.

        Give ``images`` (keys default to their content hash), or ``keys`` with a ``load`` function
        that returns the images for a list of keys (e.g. ``corpus.load``), or both.
        """
        keys = self._keys(images, keys, load)
        spec = backbones.get(backbone)
        missing = self.missing(spec.id, keys)
        if missing:
            self._compute(spec.id, missing, self._loader(images, keys, load))
        return self._gather(spec.id, keys, spec.dim)

    def missing(self, backbone: str, keys: Sequence[str]) -> list[str]:
        index = self._refresh(backbones.get(backbone).id)
        return [k for k in dict.fromkeys(keys) if k not in index]

    def outputs(self, model, images: Sequence[np.ndarray] | None = None, *,
                keys: Sequence[str] | None = None, load: Loader | None = None) -> np.ndarray:
        """A model's raw output (see :func:`model_outputs`), through cached backbone features."""
        return model_outputs(model, lambda backbone: self.get(backbone, images, keys=keys, load=load),
                             lambda: self._images(images, keys, load))

    def count(self, backbone: str) -> int:
        return len(self._refresh(backbones.get(backbone).id))

    # -- internals ------------------------------------------------------------------------------
    @staticmethod
    def _keys(images, keys, load) -> list[str]:
        if keys is None:
            if images is None:
                raise InvalidParameterError("FeatureCache.get needs images or keys")
            return [image_key(im) for im in images]
        keys = [str(k) for k in keys]
        if images is not None and len(images) != len(keys):
            raise InvalidParameterError(f"{len(images)} images but {len(keys)} keys")
        if images is None and load is None:
            raise InvalidParameterError("keys without images need a load function")
        return keys

    @staticmethod
    def _loader(images, keys: list[str], load: Loader | None) -> Loader:
        if images is None:
            return load
        by_key = dict(zip(keys, images, strict=True))
        return lambda wanted: [by_key[k] for k in wanted]

    def _images(self, images, keys, load) -> Sequence[np.ndarray]:
        if images is not None:
            return images
        if keys is None or load is None:
            raise InvalidParameterError("give images, or keys with a load function")
        return load(list(keys))

    def _dir(self, backbone: str) -> Path:
        digest = backbones.get(backbone).digest
        return self.root / f"{re.sub(r'[^A-Za-z0-9.@-]+', '_', backbone)}-{digest[:12]}"

    def _refresh(self, backbone: str) -> dict[str, tuple[int, int]]:
        """The key -> (shard, row) index, extended by shards other processes wrote since."""
        index = self._index.setdefault(backbone, {})
        shards = self._shards.setdefault(backbone, [])
        directory = self._dir(backbone)
        known = set(shards)
        for keys_file in sorted(directory.glob("*.keys.npy")) if directory.is_dir() else []:
            feats_file = keys_file.with_name(keys_file.name.replace(".keys.npy", ".feats.npy"))
            if feats_file in known:
                continue
            shard_keys = np.load(keys_file, allow_pickle=False)
            shards.append(feats_file)
            for row, k in enumerate(shard_keys.tolist()):
                index.setdefault(k, (len(shards) - 1, row))
        return index

    def _compute(self, backbone: str, missing: list[str], load: Loader) -> None:
        model = get_backbone(backbone)
        chunks = [missing[i: i + self.shard_size] for i in range(0, len(missing), self.shard_size)]
        batches = [(ci, c[j: j + self.batch_size]) for ci, c in enumerate(chunks)
                   for j in range(0, len(c), self.batch_size)]
        done: dict[int, list[np.ndarray]] = {}
        for ci, batch in progress(batches, f"{backbone} features ({len(missing)} images)",
                                  disable=None if self.show_progress is None
                                  else not self.show_progress):
            done.setdefault(ci, []).append(model.features(load(batch)))
            if sum(len(f) for f in done[ci]) == len(chunks[ci]):
                self._write_shard(backbone, chunks[ci], np.concatenate(done.pop(ci)))

    def _write_shard(self, backbone: str, keys: list[str], feats: np.ndarray) -> None:
        directory = self._dir(backbone)
        name = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:20]
        for suffix, array in ((".feats.npy", feats.astype(np.float16)),
                              (".keys.npy", np.asarray(keys, dtype=str))):
            with atomic_path(directory / f"{name}{suffix}") as tmp, open(tmp, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
        self._refresh(backbone)
        logger.debug("wrote %d %s features to %s", len(keys), backbone, name)

    def _gather(self, backbone: str, keys: list[str], dim: int) -> np.ndarray:
        index, shards = self._refresh(backbone), self._shards[backbone]
        out = np.empty((len(keys), dim), dtype=np.float32)
        rows: dict[int, tuple[list[int], list[int]]] = {}
        for i, k in enumerate(keys):
            shard, row = index[k]
            dest, src = rows.setdefault(shard, ([], []))
            dest.append(i)
            src.append(row)
        for shard, (dest, src) in rows.items():
            out[dest] = np.load(shards[shard], mmap_mode="r")[src]
        return out
