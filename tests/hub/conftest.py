"""Fixtures for the hub tests: a fresh hub per test and tiny real models of every family."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

CLASSES3 = ["sandal", "sneaker", "boot"]


@pytest.fixture(autouse=True, scope="session")
def _two_threads():
    import torch

    torch.set_num_threads(2)


@pytest.fixture
def hub(tmp_path):
    from mll.hub import Hub

    with Hub.open(tmp_path / "hub") as h:
        yield h


@pytest.fixture
def classes_file(tmp_path) -> Path:
    path = tmp_path / "classes.txt"
    path.write_text("# footwear\nsandal\nsneaker\nboot\tn02872752\n")
    return path


def _small_cnn(n_classes: int = 3, seed: int = 0):
    import torch

    from mll.hub.archs import build

    torch.manual_seed(seed)
    return build("small-cnn", {"n_classes": n_classes, "width": 4}).eval()


@pytest.fixture
def small_cnn():
    """``small_cnn(n_classes, seed)``: a seeded module of the registered small-cnn architecture."""
    return _small_cnn


@pytest.fixture
def cnn_dir(tmp_path) -> Path:
    """The documented upload layout: model.safetensors + config.json."""
    from safetensors.torch import save_file

    module = _small_cnn()
    path = tmp_path / "cnn"
    path.mkdir()
    save_file(module.state_dict(), str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(
        {"arch": "small-cnn", "arch_config": {"n_classes": 3, "width": 4}}))
    return path


@pytest.fixture
def onnx_file(tmp_path) -> Path:
    """A tiny torch CNN exported to ONNX (28x28 gray in, 3 logits out, dynamic batch)."""
    from mll.hub.testing import export_onnx

    return export_onnx(_small_cnn(seed=1), tmp_path / "tiny.onnx")


@pytest.fixture
def hf_clip_dir(tmp_path) -> Path:
    """A small randomly initialised CLIPModel with a character-level tokenizer, saved offline."""
    from mll.hub.testing import tiny_clip_dir

    return tiny_clip_dir(tmp_path / "tiny-clip")


@pytest.fixture(scope="session")
def photos() -> list[np.ndarray]:
    """Real photos bundled with scikit-image: a cat, coffee, a rocket."""
    from skimage import data

    return [data.chelsea(), data.coffee(), data.rocket()]


@pytest.fixture
def gray_images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(5)]
