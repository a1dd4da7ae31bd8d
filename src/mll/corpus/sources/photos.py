"""Real photographs shipped inside Python packages: foolbox's samples and scikit-image's data.

foolbox's 20 ImageNet photos, 40 CIFAR images and 40 MNIST/Fashion-MNIST digits are ``eval``
(its Fashion-MNIST digits are exact copies of Fashion-MNIST test images: the corpus keeps one
record of each). scikit-image's photos (a cat, a coffee cup, a rocket, 100 faces, ...) are
``sample``. Files are read directly; neither package is imported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CorpusConfig
from ..mappings import load_mapping
from ..render import PHOTO_VARIANTS, photo_variant
from ._paths import python_package_dir
from .base import Item, Source, Unit, register
from .icons import allot

FOOLBOX_STYLES = {"imagenet": "photo/imagenet", "cifar10": "photo32/cifar10",
                  "cifar100": "photo32/cifar100", "mnist": "gray28/mnist",
                  "fashionMNIST": "gray28/fashion-mnist"}
FOOLBOX_LICENSES = {"imagenet": "ImageNet terms of access (research use)",
                    "cifar10": "CIFAR (research use)", "cifar100": "CIFAR (research use)",
                    "mnist": "CC-BY-SA-3.0", "fashionMNIST": "MIT"}
LFW_FACES = 100  # lfw_subset.npy: rows 0-99 are faces, 100-199 are not


def read_photo(path: Path) -> np.ndarray:
    """uint8 pixels, gray files as ``HxW`` and colour files as RGB."""
    from ...images import load_image_file

    return load_image_file(path)


def photo_items(image: np.ndarray, orig_id: str, wnid: str, variants: list[int], role: str,
                style: str, license: str) -> Iterator[Item]:
    """The requested photo variants; small images (digits, CIFAR) are kept as they are."""
    if image.shape[0] * image.shape[1] <= 32 * 32:
        yield Item(image, orig_id, wnid, role, "none", style, license)
        return
    rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
    for v in variants:
        variant = PHOTO_VARIANTS[v]
        yield Item(photo_variant(rgb, variant), orig_id, wnid, role, variant.tag, style, license)


@register
class FoolboxSource(Source):
    name = "foolbox"
    install_hint = "pip install --no-deps foolbox==3.3.4"

    def _dir(self) -> Path:
        return python_package_dir("foolbox") / "data"

    def inputs(self) -> list[Path]:
        return [self._dir() / f for f in load_mapping("foolbox")]

    def plan(self, cfg: CorpusConfig) -> list[Unit]:
        role = "eval"
        items = [[f, row.wnid, list(range(cfg.variants(role)))]
                 for f, row in load_mapping("foolbox").items()]
        return [Unit(self.name, role, {"role": role, "items": items},
                     tuple(str(p) for p in self.inputs()))]

    def render(self, params: dict[str, Any]) -> Iterator[Item]:
        table = load_mapping("foolbox")
        for file, wnid, variants in params["items"]:
            dataset = table[file].extra[0]
            yield from photo_items(read_photo(self._dir() / file), file, wnid, variants,
                                   params["role"], FOOLBOX_STYLES[dataset],
                                   FOOLBOX_LICENSES[dataset])


@register
class SkimageSource(Source):
    name = "skimage"
    style = "photo/skimage"
    license = "BSD-3-Clause (scikit-image data; see its README for each image's source)"
    install_hint = "pip install scikit-image"

    def _dir(self) -> Path:
        return python_package_dir("skimage") / "data"

    def inputs(self) -> list[Path]:
        return [self._dir() / f for f in load_mapping("skimage")]

    def _pictures(self) -> list[tuple[str, str]]:
        """(picture id, wnid): one per photo file, one per face of ``lfw_subset.npy``."""
        out = []
        for file, row in load_mapping("skimage").items():
            if file == "lfw_subset.npy":
                out += [(f"{file}#{i}", row.wnid) for i in range(LFW_FACES)]
            else:
                out.append((file, row.wnid))
        return out

    def plan(self, cfg: CorpusConfig) -> list[Unit]:
        role = "sample"
        groups: dict[str, list[str]] = defaultdict(list)
        for pic, wnid in self._pictures():
            groups[wnid].append(pic)
        assignments = allot(groups, cfg.variants(role), cfg.node_cap(role))
        return [Unit(self.name, role, {"role": role, "items": [list(a) for a in assignments]},
                     tuple(str(p) for p in self.inputs()))]

    def _load(self, pic: str) -> np.ndarray:
        file, _, row = pic.partition("#")
        if file.endswith(".npy"):
            faces = np.load(self._dir() / file, allow_pickle=False)
            return np.rint(faces[int(row)] * 255).astype(np.uint8)
        return read_photo(self._dir() / file)

    def render(self, params: dict[str, Any]) -> Iterator[Item]:
        for pic, wnid, variants in params["items"]:
            yield from photo_items(self._load(pic), pic, wnid, variants, params["role"],
                                   self.style, self.license)
