"""Where labels live and how they become visible.

Per model (by content hash) a directory ``<hub>/labels/<hash16>/`` holds

- ``shards/<digest>.npz``: raw outputs for a batch of sample images, each written atomically; they
  are what an interrupted run resumes from;
- ``<graph12>-<corpus12>/``: the published label for one graph and corpus version: aligned outputs
  (memory-mappable ``.npy``), per-node statistics and ``summary.json``. It is assembled in a
  temporary directory and renamed into place, so selection never sees a partial label.

Files damaged afterwards (deleted, truncated, overwritten) are detected when a label is read:
selection names the model and says ``mll label --model ID`` repairs it, ``mll hub verify`` lists
them, and labelling treats a damaged label as missing and publishes a whole one in its place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..config import HubPaths
from ..errors import StoreError

logger = logging.getLogger(__name__)

#: What a damaged file raises when numpy or zipfile read it.
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)

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


class DamagedLabelError(StoreError):
    """A published label's files are missing or unreadable; labelling the model again repairs it."""

    def __init__(self, label_dir: Path, reason: str, model_id: str | None = None) -> None:
        self.label_dir, self.reason, self.model_id = label_dir, reason, model_id
        who = f"model {model_id}" if model_id else "a model"
        fix = (f"'mll label --model {model_id}' repairs it" if model_id
               else "'mll label' repairs it")
        super().__init__(f"the label of {who} is damaged ({reason}, in {label_dir}); {fix}")


@dataclass(frozen=True)
class PublishedLabel:
    """Everything one published label holds, each file checked."""

    outputs: Outputs
    stats: dict[str, np.ndarray]
    summary: dict
    text_nodes: np.ndarray | None = None
    text_emb: np.ndarray | None = None


class LabelStore:
    """Files of one hub's labels."""

    def __init__(self, hub_dir: Path) -> None:
        self.root = HubPaths(hub_dir).labels

    def model_dir(self, content_hash: str) -> Path:
        return self.root / content_hash[:16]

    def label_dir(self, content_hash: str, graph_version: str, corpus_version: str) -> Path:
        return self.model_dir(content_hash) / f"{graph_version[:12]}-{corpus_version[:12]}"

    def is_published(self, content_hash: str, graph_version: str, corpus_version: str) -> bool:
        """A whole label is there (a damaged one is not published: labelling replaces it)."""
        ldir = self.label_dir(content_hash, graph_version, corpus_version)
        return (ldir / "summary.json").is_file() and label_problem(ldir) is None

    def published_dirs(self, content_hash: str) -> list[Path]:
        """Every label directory of a model, any graph or corpus version, damaged ones included."""
        mdir = self.model_dir(content_hash)
        if not mdir.is_dir():
            return []
        return sorted(p for p in mdir.iterdir() if p.is_dir() and p.name != "shards"
                      and not p.name.startswith("."))

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
            try:
                yield load_label(label).outputs
            except DamagedLabelError as exc:  # its images are computed again
                logger.warning("ignoring %s", exc)
        for shard in sorted((mdir / "shards").glob("*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    out = Outputs(data["ids"], data["values"], data.get("index"),
                                  data.get("rest"))
            except _READ_ERRORS as exc:
                logger.warning("ignoring damaged shard %s (%s); its images are computed again",
                               shard, exc)
                continue
            yield out

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
            if dest.exists() and label_problem(dest) is None:
                shutil.rmtree(tmp)  # an identical label published concurrently: keep the first
                return
            if dest.exists():  # damaged: move it aside, then put the whole one in its place
                stale = Path(tempfile.mkdtemp(prefix=f".{dest.name}.damaged.", dir=dest.parent))
                os.replace(dest, stale / dest.name)
                shutil.rmtree(stale, ignore_errors=True)
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(dest.parent / "shards", ignore_errors=True)  # merged into the label

    def summaries(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.root.glob("*/*/summary.json"))]


def read_outputs(label_dir: Path, mmap: bool = True) -> Outputs:
    """A published label's outputs; :class:`DamagedLabelError` when a file is missing or cut."""
    mode = "r" if mmap else None
    ids, values = _array(label_dir, "ids", mode), _array(label_dir, "values", mode)
    index, rest = (_array(label_dir, n, mode, required=False) for n in ("index", "rest"))
    if ids.ndim != 1 or values.ndim != 2 or len(values) != len(ids):
        raise DamagedLabelError(label_dir, f"values.npy has shape {values.shape} for "
                                           f"{len(ids)} images")
    if (index is None) != (rest is None):
        raise DamagedLabelError(label_dir, "index.npy or rest.npy is missing")
    if index is not None and (index.shape != values.shape or rest.shape != ids.shape):
        raise DamagedLabelError(label_dir, f"index.npy {index.shape} or rest.npy {rest.shape} "
                                           f"does not fit values.npy {values.shape}")
    return Outputs(ids, values, index, rest)


def read_summary(label_dir: Path) -> dict:
    try:
        summary = json.loads((label_dir / "summary.json").read_text())
    except FileNotFoundError:
        raise DamagedLabelError(label_dir, "summary.json is missing") from None
    except (OSError, ValueError) as exc:
        raise DamagedLabelError(label_dir, f"summary.json is unreadable: {exc}") from None
    if not isinstance(summary, dict):
        raise DamagedLabelError(label_dir, "summary.json is not a JSON object")
    return summary


def read_stats(label_dir: Path) -> dict[str, np.ndarray]:
    path = label_dir / "stats.npz"
    if not path.is_file():
        raise DamagedLabelError(label_dir, "stats.npz is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except _READ_ERRORS as exc:
        raise DamagedLabelError(label_dir, f"stats.npz is unreadable: {exc}") from None


def load_label(label_dir: Path, model_id: str | None = None, mmap: bool = True) -> PublishedLabel:
    """Every file of a published label, checked; the error names ``model_id`` when given."""
    try:
        summary = read_summary(label_dir)
        outputs = read_outputs(label_dir, mmap=mmap)
        if summary.get("images", len(outputs.ids)) != len(outputs.ids):
            raise DamagedLabelError(label_dir, f"ids.npy holds {len(outputs.ids)} images, "
                                               f"summary.json says {summary['images']}")
        stats = read_stats(label_dir)
        text_nodes = text_emb = None
        if summary.get("kind") == "vlm":
            mode = "r" if mmap else None
            text_nodes = _array(label_dir, "text_nodes", mode)
            text_emb = _array(label_dir, "text_emb", mode)
            if text_emb.ndim != 2 or len(text_emb) != len(text_nodes):
                raise DamagedLabelError(label_dir, f"text_emb.npy has shape {text_emb.shape} for "
                                                   f"{len(text_nodes)} nodes")
    except DamagedLabelError as exc:
        if model_id is None or exc.model_id is not None:
            raise
        raise DamagedLabelError(label_dir, exc.reason, model_id) from None
    return PublishedLabel(outputs, stats, summary, text_nodes, text_emb)


def label_problem(label_dir: Path) -> str | None:
    """Why the label in ``label_dir`` cannot be read, or None when every file is whole."""
    try:
        load_label(label_dir)
    except DamagedLabelError as exc:
        return exc.reason
    return None


def _array(label_dir: Path, name: str, mode: str | None, required: bool = True):
    path = label_dir / f"{name}.npy"
    if not path.is_file():
        if required:
            raise DamagedLabelError(label_dir, f"{name}.npy is missing")
        return None
    try:
        return np.load(path, mmap_mode=mode, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise DamagedLabelError(label_dir, f"{name}.npy is truncated or unreadable: "
                                           f"{str(exc).splitlines()[0] if str(exc) else exc!r}"
                                ) from None


def storage_bytes(label_dir: Path) -> int:
    return sum(p.stat().st_size for p in label_dir.iterdir() if p.is_file())
