"""Where labels live and how they become visible.

Per model (by content hash) a directory ``<hub>/labels/<hash16>/`` holds

- ``shards/<digest>.npz``: raw outputs for a batch of sample images, each written atomically; they
  are what an interrupted run resumes from;
- ``<graph12>-<corpus12>/``: the published label for one graph and corpus version: aligned outputs
  (memory-mappable ``.npy``), per-node statistics and ``summary.json``. It is assembled in a
  temporary directory and renamed into place, so selection never sees a partial label.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..config import HubPaths

TOP_M = 32  # heads kept per image for very wide experts (ImageNet's 1000); the rest is one mass


@dataclass(frozen=True)
class Outputs:
    """A model's outputs on some images: dense probabilities, top-m probabilities or embeddings."""

    ids: np.ndarray  # (N,) image ids (hex sha256 as bytes; ``id_list`` gives str)
    values: np.ndarray  # (N, C) probs | (N, M) top-m probs | (N, D) embeddings; float16
    index: np.ndarray | None = None  # (N, M) head indices when top-m truncated
    rest: np.ndarray | None = None  # (N,) probability mass outside the top-m

    def id_list(self) -> list[str]:
        return [i.decode() if isinstance(i, bytes) else str(i) for i in self.ids.tolist()]

    def take(self, order: np.ndarray) -> Outputs:
        return Outputs(self.ids[order], self.values[order],
                       None if self.index is None else self.index[order],
                       None if self.rest is None else self.rest[order])

    def dense(self, n_classes: int) -> np.ndarray:
        """(N, C) float32 probabilities (top-m rows put back in place; the rest mass dropped)."""
        if self.index is None:
            return self.values.astype(np.float32)
        out = np.zeros((len(self.ids), n_classes), dtype=np.float32)
        np.put_along_axis(out, self.index.astype(np.int64), self.values.astype(np.float32), axis=1)
        return out

    @staticmethod
    def from_dense(ids: list[str], values: np.ndarray, kind: str) -> Outputs:
        ids_arr = np.array(ids, dtype="S64")  # hex digests as bytes: 4x smaller than unicode
        if kind == "expert" and values.shape[1] > 2 * TOP_M:
            index = np.argsort(-values, axis=1)[:, :TOP_M]
            top = np.take_along_axis(values, index, axis=1)
            return Outputs(ids_arr, top.astype(np.float16), index.astype(np.int16),
                           np.clip(1.0 - top.sum(axis=1), 0, 1).astype(np.float16))
        return Outputs(ids_arr, values.astype(np.float16))

    @staticmethod
    def concat(parts: list[Outputs]) -> Outputs:
        def cat(name):
            arrays = [getattr(p, name) for p in parts]
            return None if arrays[0] is None else np.concatenate(arrays)

        return Outputs(cat("ids"), cat("values"), cat("index"), cat("rest"))

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"ids": self.ids, "values": self.values}
        if self.index is not None:
            out |= {"index": self.index, "rest": self.rest}
        return out


class LabelStore:
    """Files of one hub's labels."""

    def __init__(self, hub_dir: Path) -> None:
        self.root = HubPaths(hub_dir).labels

    def model_dir(self, content_hash: str) -> Path:
        return self.root / content_hash[:16]

    def label_dir(self, content_hash: str, graph_version: str, corpus_version: str) -> Path:
        return self.model_dir(content_hash) / f"{graph_version[:12]}-{corpus_version[:12]}"

    def is_published(self, content_hash: str, graph_version: str, corpus_version: str) -> bool:
        return (self.label_dir(content_hash, graph_version, corpus_version) / "summary.json").is_file()

    # -- shards ---------------------------------------------------------------------------------
    @staticmethod
    def shard_name(content_hash: str, image_ids: list[str]) -> str:
        h = hashlib.sha256(content_hash.encode())
        for i in image_ids:
            h.update(i.encode())
        return h.hexdigest()[:24]

    def write_shard(self, content_hash: str, outputs: Outputs) -> Path:
        dest = self.model_dir(content_hash) / "shards" / (
            self.shard_name(content_hash, outputs.id_list()) + ".npz")
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **outputs.arrays())
        return dest

    def known_outputs(self, content_hash: str) -> Iterator[Outputs]:
        """Every output this model already has: published labels first, then loose shards."""
        mdir = self.model_dir(content_hash)
        if not mdir.is_dir():
            return
        for label in sorted(p for p in mdir.iterdir() if (p / "summary.json").is_file()):
            yield read_outputs(label)
        for shard in sorted((mdir / "shards").glob("*.npz")):
            with np.load(shard, allow_pickle=False) as data:
                yield Outputs(data["ids"], data["values"], data.get("index"), data.get("rest"))

    # -- publishing -----------------------------------------------------------------------------
    def publish(self, dest: Path, outputs: Outputs, stats: dict[str, np.ndarray],
                extra: dict[str, np.ndarray], summary: dict) -> None:
        """Write everything into a temporary directory, then rename it into place."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            for name, arr in {**outputs.arrays(), **extra}.items():
                np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
            np.savez(tmp / "stats.npz", **stats)
            (tmp / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
            os.chmod(tmp, 0o755)
            if dest.exists():  # an identical label published concurrently: keep the first
                shutil.rmtree(tmp)
                return
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(dest.parent / "shards", ignore_errors=True)  # merged into the label

    def summaries(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.root.glob("*/*/summary.json"))]


def read_outputs(label_dir: Path, mmap: bool = True) -> Outputs:
    mode = "r" if mmap else None

    def arr(name):
        path = label_dir / f"{name}.npy"
        return np.load(path, mmap_mode=mode, allow_pickle=False) if path.is_file() else None

    return Outputs(arr("ids"), arr("values"), arr("index"), arr("rest"))


def read_summary(label_dir: Path) -> dict:
    return json.loads((label_dir / "summary.json").read_text())


def read_stats(label_dir: Path) -> dict[str, np.ndarray]:
    with np.load(label_dir / "stats.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def storage_bytes(label_dir: Path) -> int:
    return sum(p.stat().st_size for p in label_dir.iterdir() if p.is_file())
