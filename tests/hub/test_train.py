"""Training utilities: seeded experts and LiT models whose results the hub stores as they are."""

from __future__ import annotations

import numpy as np
import pytest

from mll.errors import InvalidParameterError
from mll.hub.train import split_indices, train_cnn, train_head, train_lit

pytestmark = pytest.mark.filterwarnings("ignore:.*classes left unmapped")
BACKBONE = "efficientnet-lite0@224"


def _bars(n: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """28x28 gray images of three shapes (horizontal bar, vertical bar, square) with noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], rng.integers(0, 3, n)
    for y in labels:
        img = rng.integers(0, 60, (28, 28)).astype(np.uint8)
        if y == 0:
            img[12:16, 4:24] = 230
        elif y == 1:
            img[4:24, 12:16] = 230
        else:
            img[8:20, 8:20] = 230
        images.append(img)
    return images, labels


def _clusters(n: int, k: int, dim: int = 1280, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (k, dim))
    y = rng.integers(0, k, n)
    return (centres[y] + rng.normal(0, 0.8, (n, dim))).astype(np.float32), y


def test_split_is_stratified_and_fraction_applies_to_train():
    y = np.repeat(np.arange(4), 50)
    train, test = split_indices(y, holdout=0.2, data_fraction=0.5, seed=0)
    assert len(test) == 40 and len(train) == 80 and not set(train) & set(test)
    assert np.bincount(y[train]).tolist() == [20] * 4
    with pytest.raises(InvalidParameterError):
        split_indices(y, holdout=1.0, data_fraction=1, seed=0)


def test_train_cnn_is_seeded_accurate_and_addable(hub):
    images, labels = _bars(600)
    classes = ["horizontal bar", "vertical bar", "square"]
    model = train_cnn(images, labels, classes, epochs=2, seed=3, width=8)
    again = train_cnn(images, labels, classes, epochs=2, seed=3, width=8)
    for a, b in zip(model.module.state_dict().values(), again.module.state_dict().values(),
                    strict=True):
        assert np.array_equal(a.numpy(), b.numpy())
    assert model.metrics["heldout_accuracy"] > 0.9
    assert model.metrics["n_train"] + model.metrics["n_heldout"] == 600
    weak = train_cnn(images, labels, classes, epochs=1, data_fraction=0.05, seed=3, width=8)
    assert weak.metrics["n_train"] < 30
    info = hub.add(model, name="bars")
    assert info.family == "torch-safetensors" and info.metrics == model.metrics
    assert [c.name for c in info.classes] == classes
    expert = hub.load(info.id)
    np.testing.assert_allclose(expert.predict_proba(images[:10]),
                               model.predict_proba(expert.input_spec.prepare(images[:10])),
                               atol=1e-6)


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_train_head_on_features(hub, head):
    feats, y = _clusters(300, 4)
    classes = ["cat", "dog", "car", "cup"]
    model = train_head(feats, y, classes, backbone=BACKBONE, head=head, epochs=10, seed=0)
    assert model.metrics["heldout_accuracy"] > 0.9
    info = hub.add(model, classes=[f"{c}\tn0000000{i}" for i, c in enumerate(classes)])
    assert info.backbone == BACKBONE and info.config["arch"] == f"{head}-head"
    expert = hub.load(info.id)
    np.testing.assert_allclose(expert.predict_proba_from_features(feats[:7]),
                               model.predict_proba(feats[:7]), atol=1e-6)


def test_train_head_checks_its_inputs():
    feats, y = _clusters(20, 2, dim=100)
    with pytest.raises(InvalidParameterError, match="features are"):
        train_head(feats, y, ["a", "b"], backbone=BACKBONE)
    feats, y = _clusters(20, 2)
    with pytest.raises(InvalidParameterError, match="class indices"):
        train_head(feats, y + 5, ["a", "b"], backbone=BACKBONE)
    with pytest.raises(InvalidParameterError, match="'linear' or 'mlp'"):
        train_head(feats, y, ["a", "b"], backbone=BACKBONE, head="svm")


def test_train_lit_and_add(hub):
    """LiT on synthetic features (the corpus path is covered by the CLI test)."""
    names = ["cat which is a feline mammal", "car which is a motor vehicle",
             "cup which is a small open container", "dog which is a canine"]
    feats, y = _clusters(240, 4)
    lit = train_lit(feats, [names[i] for i in y], backbone=BACKBONE, epochs=30, seed=0)
    assert lit.metrics["heldout_accuracy"] > 0.9 and lit.metrics["n_captions"] == 4
    info = hub.add(lit)
    assert info.family == "lit" and info.kind == "vlm" and info.metrics == lit.metrics
    assert hub.add(lit.save(hub.root / "lit.safetensors")).id == info.id  # family from the file
    vlm = hub.load(info.id)
    img = vlm.encode_images_from_features(feats[:20])
    sims = vlm.similarity(img, vlm.encode_texts(names))
    assert (sims.argmax(1) == y[:20]).mean() > 0.9
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1, atol=1e-5)
