"""Backbone features: computed once per image, persisted, shared by every model on the backbone."""

from __future__ import annotations

import numpy as np
import pytest

from mll.errors import InvalidParameterError
from mll.hub import FeatureCache, get_backbone, image_key
from mll.hub.backbones import Backbone

BACKBONE = "efficientnet-lite0@224"


@pytest.fixture
def images():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(5)] + [
        rng.integers(0, 256, (28, 28), dtype=np.uint8)]


@pytest.fixture
def counting(monkeypatch):
    """Count how many images the backbone really runs on."""
    seen = []
    original = Backbone.features

    def features(self, imgs, batch_size=8):
        seen.extend(image_key(im) for im in imgs)
        return original(self, imgs, batch_size)

    monkeypatch.setattr(Backbone, "features", features)
    return seen


def test_features_are_computed_once_and_persisted(tmp_path, images, counting):
    cache = FeatureCache(tmp_path, batch_size=4, shard_size=4)
    first = cache.get(BACKBONE, images)
    assert first.shape == (6, 1280) and len(counting) == 6
    np.testing.assert_array_equal(first, get_backbone(BACKBONE).features(images))
    counting.clear()
    again = FeatureCache(tmp_path).get(BACKBONE, images[::-1])
    assert counting == [] and np.array_equal(again, first[::-1])
    assert FeatureCache(tmp_path).count(BACKBONE) == 6
    shard_dir = next(tmp_path.iterdir())
    assert shard_dir.name.startswith("efficientnet-lite0@224-")
    assert len(list(shard_dir.glob("*.keys.npy"))) == 2  # shards of 4 + 2 images


def test_only_missing_images_are_loaded(tmp_path, images, counting):
    keys = [f"img{i}" for i in range(6)]
    store = dict(zip(keys, images, strict=True))
    loaded = []

    def load(wanted):
        loaded.append(list(wanted))
        return [store[k] for k in wanted]

    cache = FeatureCache(tmp_path)
    cache.get(BACKBONE, keys=keys[:3], load=load)
    loaded.clear()
    counting.clear()
    out = cache.get(BACKBONE, keys=keys, load=load)
    assert loaded == [keys[3:]] and len(counting) == 3 and out.shape == (6, 1280)
    assert cache.missing(BACKBONE, keys + ["new"]) == ["new"]


def test_an_incomplete_shard_is_ignored(tmp_path, images):
    cache = FeatureCache(tmp_path)
    cache.get(BACKBONE, images[:2])
    shard_dir = next(tmp_path.iterdir())
    for keys_file in shard_dir.glob("*.keys.npy"):
        keys_file.unlink()  # as if the writer died between the two files
    assert FeatureCache(tmp_path).count(BACKBONE) == 0


def test_cached_path_gives_the_same_outputs(hub, images):
    info = hub.add("efficientnet-lite0", family="efficientnet-lite")
    expert = hub.load(info.id)
    direct = expert.predict_proba(images)
    cached = hub.features.outputs(expert, images)
    np.testing.assert_array_equal(direct, cached)
    assert hub.features.count(BACKBONE) == 6
    assert (hub.root / "cache" / "features").is_dir()


def test_bad_calls(tmp_path, images):
    cache = FeatureCache(tmp_path)
    with pytest.raises(InvalidParameterError):
        cache.get(BACKBONE)
    with pytest.raises(InvalidParameterError, match="2 images but 1 keys"):
        cache.get(BACKBONE, images[:2], keys=["a"])
    with pytest.raises(InvalidParameterError, match="load function"):
        cache.get(BACKBONE, keys=["a"])
    from mll.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="did you mean"):
        cache.get("efficientnet-lite0@225", images)
