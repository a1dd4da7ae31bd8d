"""Where labels live and how they become visible.

Per model (by content hash) a directory ``<hub>/labels/<hash16>/`` holds

- ``shards/<digest>.npz``: raw outputs for a batch of sample images, each written atomically; they
  are what an interrupted run resumes from;
- ``<graph12>-<corpus12>/``: the published label for one graph and corpus version: aligned outputs
  (memory-mappable ``.npy``), per-node statistics and ``summary.json``. It is assembled in a
  temporary directory and renamed into place, so selection never sees a partial label.

Three layouts exist (``summary.json``'s ``format``; docs/hub.md has the byte counts):

- **format 1** (labels published before the compact layout): ``ids.npy`` (64-byte image ids per
  row), ``values.npy`` float16 (probabilities, top-32 with ``index.npy``/``rest.npy`` for wide
  heads, or embeddings), ``stats.npz`` with node names and a dense confusion matrix. Still read;
  ``mll label`` converts it (:func:`convert_label`).
- **format 2** (written now): rows are the images of one shared, ordered id list per corpus version
  (``<hub>/labels/_images/<corpus12>/ids.npy`` and its sample nodes ``nodes.npy``; a label records
  the list's digest), so a label holds no ids. Probabilities are uint8 steps of 1/255 (each within
  1/510 of the float value): dense ``values.npy`` (N, C) for up to 64 heads, else the non-zero steps
  of the top 32 heads per image as CSR (``values.npy``, ``index.npy`` uint16, ``indptr.npy``).
  Embeddings are int8 per row with a float32 scale (``scale.npy``; each component within
  scale/2). ``stats.npz`` is compressed, counts in the smallest integer type, rates float16,
  the confusion matrix sparse (``pred_node``, ``pred_head``, ``pred_n``). Still read; ``mll label``
  converts it.
- **format 3** (written now): the same quantised values as format 2, deflated: the output arrays
  are one ``outputs.npz``, compressed for experts (a VLM's int8 embeddings are stored plain). Dense probabilities are stored head by head (``values`` is
  (C, N): a head's probabilities over the images are alike, so they compress better), and a wide
  expert's heads as uint8 gaps from the previous kept head of the row (``gaps``; a gap over 255 is
  bridged by zero-valued entries 255 heads apart) with each row's entry count (``counts``)
  instead of uint16 heads and an ``indptr``. Why deflate rather than fewer heads or coarser
  steps: it is lossless (selection sees exactly the format-2 values), it brings every expert
  under a fifth of its format-1 bytes, where dropping heads could not (the starter hub's
  55-head experts spread their mass over ~40 heads per image), and selection decodes a whole
  label into float32 when it reads it, so a memory map of the outputs saved no work.

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
import threading
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..config import HubPaths
from ..errors import StoreError

logger = logging.getLogger(__name__)

#: What a damaged file raises when numpy or zipfile read it.
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)

TOP_M = 32  # heads kept per image for very wide experts (ImageNet's 1000); the rest is one mass
FORMAT = 3  # the label layout written now (module docstring)
STEPS = 255  # uint8 probability steps: a stored probability is within 1 / (2 * STEPS) of the true
SHARED = "_images"  # labels/_images/<corpus12>/: the shared image ids and sample nodes
OUTPUTS = "outputs.npz"  # format 3: a label's output arrays, deflated


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

    def matrix(self, kind: str, n_classes: int) -> np.ndarray:
        """(N, C) float32 probabilities of an expert, (N, D) float32 embeddings of a VLM."""
        return self.dense(n_classes) if kind == "expert" else np.asarray(self.values, np.float32)

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


@dataclass(frozen=True)
class CompactOutputs:
    """A format-2 label's outputs; row i is image i of the corpus version's shared id list."""

    ids: np.ndarray  # (N,) the shared ids (memory-mapped)
    encoding: str  # "dense-u8" | "gaps-u8" | "sparse-u8" (format 2) | "emb-i8"
    values: np.ndarray  # uint8 (N, C) | uint8 (nnz,) | int8 (N, D)
    columns: int  # C heads or D embedding dimensions
    index: np.ndarray | None = None  # (nnz,) sparse-u8: uint16 head; gaps-u8: uint8 gap to it
    indptr: np.ndarray | None = None  # sparse formats: (N + 1,) row starts
    scale: np.ndarray | None = None  # emb-i8: (N,) float32 per-row scale

    def id_list(self) -> list[str]:
        return [i.decode() for i in np.asarray(self.ids).tolist()]

    def matrix(self, kind: str, n_classes: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Float32 probabilities (N, C) or embeddings (N, D) of ``rows`` (all by default)."""
        if self.encoding == "emb-i8":
            sel = slice(None) if rows is None else rows
            return np.asarray(self.values[sel], np.float32) * np.asarray(
                self.scale[sel], np.float32)[:, None]
        return self.dense(n_classes, rows)

    def dense(self, n_classes: int, rows: np.ndarray | None = None) -> np.ndarray:
        if self.encoding == "dense-u8":
            sel = slice(None) if rows is None else rows
            return np.asarray(self.values[sel], np.float32) / STEPS
        rows = np.arange(len(self.indptr) - 1) if rows is None else np.asarray(rows)
        starts = np.asarray(self.indptr[rows], np.int64)
        lens = np.asarray(self.indptr[rows + 1], np.int64) - starts
        out = np.zeros((len(rows), n_classes), dtype=np.float32)
        first = np.cumsum(lens) - lens  # where each row starts among the gathered entries
        pos = np.arange(int(lens.sum())) + np.repeat(starts - first, lens)
        index = np.asarray(self.index)[pos].astype(np.int64)
        if self.encoding == "gaps-u8":  # heads are running sums of the gaps within a row
            run = np.cumsum(index)
            index = run - np.repeat(np.concatenate([[0], run])[first], lens) - 1
        out[np.repeat(np.arange(len(rows)), lens), index] = np.asarray(self.values)[pos] / STEPS
        return out

    def to_outputs(self) -> Outputs:
        """The format-1 form (float16, ids per row): what labelling gathers from."""
        kind = "vlm" if self.encoding == "emb-i8" else "expert"
        values = self.matrix(kind, self.columns)
        if kind == "expert":
            return Outputs.from_dense(self.id_list(), values, kind)
        return Outputs(np.asarray(self.ids), values.astype(np.float16))


def encode_outputs(outputs: Outputs, kind: str, n_classes: int
                   ) -> tuple[dict[str, np.ndarray], dict]:
    """Format-2 arrays of ``outputs`` and the summary's ``outputs`` entry describing them."""
    if kind != "expert":
        emb = np.asarray(outputs.values, np.float32)
        scale = np.maximum(np.abs(emb).max(axis=1), 1e-12) / 127
        q = np.clip(np.rint(emb / scale[:, None]), -127, 127).astype(np.int8)
        return ({"values": q, "scale": scale.astype(np.float32)},
                {"encoding": "emb-i8", "columns": int(emb.shape[1])})
    if outputs.index is None and outputs.values.shape[1] <= 2 * TOP_M:
        q = np.rint(np.clip(np.asarray(outputs.values, np.float32), 0, 1) * STEPS).astype(np.uint8)
        return {"values": q}, {"encoding": "dense-u8", "columns": int(q.shape[1])}
    if outputs.index is None:  # wide but not truncated yet
        outputs = Outputs.from_dense([], np.asarray(outputs.values, np.float32), "expert")
    q = np.rint(np.clip(np.asarray(outputs.values, np.float32), 0, 1) * STEPS).astype(np.uint8)
    index = np.asarray(outputs.index, np.int64)  # the top TOP_M heads of each row
    order = np.argsort(index, axis=1, kind="stable")  # heads ascending within a row
    q, index = np.take_along_axis(q, order, 1), np.take_along_axis(index, order, 1)
    keep = q > 0
    return encode_gaps(q[keep], index[keep], keep.sum(axis=1), n_classes)


GAP = 255  # the largest gap one uint8 entry holds; longer ones are bridged by empty entries


def encode_gaps(values: np.ndarray, heads: np.ndarray, counts: np.ndarray, n_classes: int
                ) -> tuple[dict[str, np.ndarray], dict]:
    """The ``gaps-u8`` arrays of sparse rows: ``values`` (nnz,) uint8 steps at ``heads`` (nnz,),
    ascending within each row, ``counts`` (N,) entries per row.

    Why gaps: 32 kept heads out of 1,000 are on average 31 apart, so a head fits one byte as the
    distance from the previous one where its number needs two; the values are unchanged."""
    heads, counts = np.asarray(heads, np.int64), np.asarray(counts, np.int64)
    if heads.size and (heads.min() < 0 or heads.max() >= n_classes):
        raise ValueError(f"head numbers must lie in [0, {n_classes}), got {heads.min()} to "
                         f"{heads.max()}")
    starts = np.cumsum(counts) - counts
    prev = np.full(len(heads), -1, np.int64)  # the previous head of the row, -1 before the first
    prev[1:] = heads[:-1]
    prev[starts[counts > 0]] = -1
    gap = heads - prev
    if (gap < 1).any():
        raise ValueError("head numbers must ascend strictly within a row")
    fill = (gap - 1) // GAP  # empty entries bridging a gap longer than GAP
    at = np.cumsum(fill + 1) - 1  # where each real entry lands
    gaps = np.full(int(at[-1]) + 1 if len(at) else 0, GAP, np.uint8)
    vals = np.zeros(len(gaps), np.uint8)
    gaps[at], vals[at] = gap - GAP * fill, values
    row = np.repeat(np.arange(len(counts)), counts)
    per_row = np.bincount(row, weights=fill + 1, minlength=len(counts)).astype(np.int64)
    return ({"values": vals, "gaps": gaps, "counts": _smallest_int(per_row)},
            {"encoding": "gaps-u8", "columns": int(n_classes)})


def recode(outputs: CompactOutputs) -> tuple[dict[str, np.ndarray], dict]:
    """A format-2 label's arrays in the current layout, without a round trip through floats."""
    if outputs.encoding == "sparse-u8":
        indptr = np.asarray(outputs.indptr, np.int64)
        return encode_gaps(np.asarray(outputs.values), np.asarray(outputs.index), np.diff(indptr),
                           outputs.columns)
    if outputs.encoding == "emb-i8":
        return ({"values": np.asarray(outputs.values), "scale": np.asarray(outputs.scale)},
                {"encoding": "emb-i8", "columns": outputs.columns})
    return {"values": np.asarray(outputs.values)}, {"encoding": outputs.encoding,
                                                    "columns": outputs.columns}


def _smallest_int(a: np.ndarray) -> np.ndarray:
    top = int(a.max()) if a.size else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max and (a.min() if a.size else 0) >= 0:
            return a.astype(dtype)
    return a.astype(np.int64)


def encode_stats(stats: dict[str, np.ndarray], nodes: np.ndarray | None) -> dict[str, np.ndarray]:
    """Stats in their format-2 form: no node names when they are the shared list ``nodes``."""
    out: dict[str, np.ndarray] = {}
    for key, arr in stats.items():
        arr = np.asarray(arr)
        if key == "nodes" and nodes is not None and np.array_equal(arr, nodes):
            continue
        if key == "predictions" and arr.ndim == 2:
            node, head = np.nonzero(arr)
            out |= {"pred_node": _smallest_int(node), "pred_head": _smallest_int(head),
                    "pred_n": _smallest_int(arr[node, head]), "pred_shape": np.array(arr.shape)}
        elif arr.dtype.kind in "iu":
            out[key] = _smallest_int(arr)
        elif arr.dtype.kind == "f":
            out[key] = arr.astype(np.float16)
        else:
            out[key] = arr
    return out


def _decode_stats(raw: dict[str, np.ndarray], nodes: np.ndarray) -> dict[str, np.ndarray]:
    out = {"nodes": nodes} if "nodes" not in raw else {}
    for key, arr in raw.items():
        out[key] = (arr.astype(np.int64) if arr.dtype.kind in "iu" and not key.startswith("pred_")
                    else arr.astype(np.float32) if arr.dtype.kind == "f" else arr)
    return out


class SharedImages:
    """The ordered sample ids (and sample nodes) of one corpus version, shared by its labels.

    Written once, atomically, by the first label published for the corpus version; every later
    label must have the same rows, and records the list's digest so a replaced list is detected.
    """

    _lock = threading.Lock()
    _cache: dict[tuple, tuple[np.ndarray, np.ndarray, str]] = {}  # by (path, mtime, size)

    def __init__(self, root: Path, corpus12: str) -> None:
        self.dir = root / SHARED / corpus12

    def read(self) -> tuple[np.ndarray, np.ndarray, str]:
        """(ids, nodes, digest); :class:`DamagedLabelError` when missing or unreadable."""
        path = self.dir / "ids.npy"
        try:
            st = path.stat()
        except OSError:
            raise DamagedLabelError(self.dir, "the shared image ids (ids.npy) are missing"
                                    ) from None
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._cache.get(key)
        if hit is None:
            ids = _array(self.dir, "ids", None)
            nodes = _array(self.dir, "nodes", None)
            hit = (ids, nodes, _digest(ids))
            with self._lock:
                self._cache[key] = hit
        return hit

    def ensure(self, ids: np.ndarray, nodes: np.ndarray | None) -> str:
        """Write the list if absent; refuse rows that differ from it. Returns its digest."""
        ids = np.asarray(ids, dtype="S64")
        try:
            self.read()
        except DamagedLabelError:  # absent, or damaged: written (again) whole
            if nodes is None:
                nodes = np.array([], dtype="U9")
            self.dir.mkdir(parents=True, exist_ok=True)
            for name, arr in (("nodes", np.asarray(nodes)), ("ids", ids)):  # ids last: the marker
                with atomic_path(self.dir / f"{name}.npy") as tmp:
                    with open(tmp, "wb") as fh:
                        np.save(fh, arr, allow_pickle=False)
        have, _, digest = self.read()
        if not np.array_equal(have, ids):
            raise StoreError(f"a label's {len(ids)} images differ from the corpus version's shared "
                             f"list of {len(have)} in {self.dir}; label against the current corpus")
        return digest


def _digest(ids: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(ids).tobytes()).hexdigest()[:16]


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

    outputs: Outputs | CompactOutputs
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
                out = load_label(label).outputs
                yield out.to_outputs() if isinstance(out, CompactOutputs) else out
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
                extra: dict[str, np.ndarray], summary: dict, n_classes: int | None = None
                ) -> None:
        """Write the label in the compact layout into a temporary directory, then rename it into
        place. ``n_classes`` is the expert's head count (needed when ``outputs`` are top-m)."""
        tmp = self._assemble(dest, outputs, stats, extra, summary, n_classes)
        try:
            if dest.exists() and label_problem(dest) is None:
                return  # an identical label published concurrently: keep the first
            if dest.exists():  # damaged: move it aside, then put the whole one in its place
                _swap(dest, tmp)
            else:
                os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(dest.parent / "shards", ignore_errors=True)  # merged into the label

    def convert(self, dest: Path, n_classes: int) -> bool:
        """Rewrite an older label at ``dest`` in the current layout; False when it already is.
        A format-2 label's quantised values are carried over as they are (no second rounding).

        The new directory is assembled whole beside the old one and swapped in by two renames (a
        reader between them finds no label for a moment, never a partial one)."""
        label = load_label(dest, mmap=False)
        if label.summary.get("format", 1) >= FORMAT:
            return False
        extra = {} if label.text_emb is None else {"text_nodes": label.text_nodes,
                                                   "text_emb": label.text_emb}
        summary = {k: v for k, v in label.summary.items() if k not in ("bytes", "outputs")}
        encoded = recode(label.outputs) if isinstance(label.outputs, CompactOutputs) else None
        tmp = self._assemble(dest, label.outputs, label.stats, extra, summary, n_classes, encoded)
        try:
            _swap(dest, tmp)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return True

    def _assemble(self, dest: Path, outputs: Outputs | CompactOutputs,
                  stats: dict[str, np.ndarray], extra: dict[str, np.ndarray], summary: dict,
                  n_classes: int | None, encoded: tuple[dict, dict] | None = None) -> Path:
        kind = summary.get("kind", "expert")
        shared = SharedImages(self.root, dest.name.split("-")[-1])
        digest = shared.ensure(outputs.ids, stats.get("nodes"))
        nodes = shared.read()[1]
        arrays, desc = encoded or encode_outputs(outputs, kind,
                                                 n_classes or int(outputs.values.shape[1]))
        extra = dict(extra)
        if "text_nodes" in extra and np.array_equal(np.asarray(extra["text_nodes"]), nodes):
            del extra["text_nodes"]  # the shared sample nodes
        summary = summary | {"format": FORMAT, "images_digest": digest, "outputs": desc}
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            for name, arr in extra.items():
                np.save(tmp / f"{name}.npy", np.asarray(arr), allow_pickle=False)
            if desc["encoding"] == "dense-u8":  # head by head: see the module docstring
                arrays = arrays | {"values": np.ascontiguousarray(np.asarray(arrays["values"]).T)}
            # int8 embeddings deflate by 6-8% only, and cost 2-3x the time to read: stored
            (np.savez if desc["encoding"] == "emb-i8" else np.savez_compressed)(tmp / OUTPUTS,
                                                                                **arrays)
            np.savez_compressed(tmp / "stats.npz", **encode_stats(stats, nodes))
            (tmp / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
            os.chmod(tmp, 0o755)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return tmp

    def summaries(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.root.glob("*/*/summary.json"))]


def _swap(dest: Path, new: Path) -> None:
    """Put the directory ``new`` at ``dest``, removing what was there."""
    aside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
    try:
        os.replace(dest, aside / dest.name)
        os.replace(new, dest)
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def read_outputs(label_dir: Path, mmap: bool = True) -> Outputs | CompactOutputs:
    """A published label's outputs; :class:`DamagedLabelError` when a file is missing or cut."""
    summary = read_summary(label_dir)
    if summary.get("format", 1) >= 2:
        return _read_compact(label_dir, summary, mmap)[0]
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


def _read_compact(label_dir: Path, summary: dict, mmap: bool
                  ) -> tuple[CompactOutputs, np.ndarray]:
    """A format-2 or 3 label's outputs and the shared sample nodes, every shape checked."""
    ids, nodes, digest = SharedImages(label_dir.parent.parent, label_dir.name.split("-")[-1]).read()
    if digest != summary.get("images_digest"):
        raise DamagedLabelError(label_dir, "the shared image list is not the one it was labelled "
                                           "on")
    desc = summary.get("outputs") if isinstance(summary.get("outputs"), dict) else {}
    enc, cols = desc.get("encoding"), desc.get("columns")
    mode = "r" if mmap else None
    if summary.get("format", 1) >= 3:
        packed = _packed(label_dir)

        def _get(name: str, mode: str | None) -> np.ndarray:
            if name not in packed:
                raise DamagedLabelError(label_dir, f"{OUTPUTS} holds no {name!r} array")
            return packed[name]

        values = _get("values", mode)
        if enc == "dense-u8":
            values = values.T  # stored head by head
    else:
        def _get(name: str, mode: str | None) -> np.ndarray:
            return _array(label_dir, name, mode)

        values = _get("values", mode)
    n = len(ids)
    if enc == "dense-u8":
        if values.dtype != np.uint8 or values.shape != (n, cols):
            raise DamagedLabelError(label_dir, f"values.npy has shape {values.shape} "
                                               f"{values.dtype} for {n} images x {cols} heads")
        return CompactOutputs(ids, enc, values, cols), nodes
    if enc == "sparse-u8":
        index, indptr = _get("index", mode), _get("indptr", mode)
        if (indptr.shape != (n + 1,) or values.shape != index.shape or values.ndim != 1
                or int(indptr[-1]) != len(values)):
            raise DamagedLabelError(label_dir, f"values.npy {values.shape}, index.npy "
                                               f"{index.shape} and indptr.npy {indptr.shape} do "
                                               f"not fit {n} images")
        return CompactOutputs(ids, enc, values, cols, index, indptr), nodes
    if enc == "gaps-u8":
        gaps, counts = _get("gaps", mode), _get("counts", mode)
        if (counts.shape != (n,) or counts.dtype.kind != "u" or values.ndim != 1
                or values.dtype != np.uint8 or gaps.shape != values.shape
                or gaps.dtype != np.uint8):
            raise DamagedLabelError(label_dir, f"values.npy {values.shape}, gaps.npy "
                                               f"{gaps.shape} or counts.npy {counts.shape} do "
                                               f"not fit {n} images")
        indptr = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        if indptr[-1] != len(values):
            raise DamagedLabelError(label_dir, f"counts.npy adds up to {indptr[-1]} entries, "
                                               f"values.npy holds {len(values)}")
        run = np.concatenate([[0], np.cumsum(gaps, dtype=np.int64)])
        if n and (run[indptr[1:]] - run[indptr[:-1]]).max() > cols:  # last head of a row
            raise DamagedLabelError(label_dir, f"gaps.npy names heads beyond the {cols} the "
                                               f"model has")
        return CompactOutputs(ids, enc, values, cols, gaps, indptr), nodes
    if enc == "emb-i8":
        scale = _get("scale", mode)
        if values.dtype != np.int8 or values.shape != (n, cols) or scale.shape != (n,):
            raise DamagedLabelError(label_dir, f"values.npy {values.shape} or scale.npy "
                                               f"{scale.shape} do not fit {n} images x {cols}")
        return CompactOutputs(ids, enc, values, cols, scale=scale), nodes
    raise DamagedLabelError(label_dir, f"summary.json names no known output encoding ({enc!r})")


def _packed(label_dir: Path) -> dict[str, np.ndarray]:
    """Every array of a format-3 label's ``outputs.npz``, read into memory."""
    path = label_dir / OUTPUTS
    if not path.is_file():
        raise DamagedLabelError(label_dir, f"{OUTPUTS} is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except _READ_ERRORS as exc:
        raise DamagedLabelError(label_dir, f"{OUTPUTS} is unreadable: {exc}") from None


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


def read_stats(label_dir: Path, nodes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-node statistics; a format-2 label's node names come from ``nodes`` (the shared list,
    read from disk when not given)."""
    path = label_dir / "stats.npz"
    if not path.is_file():
        raise DamagedLabelError(label_dir, "stats.npz is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {k: data[k] for k in data.files}
    except _READ_ERRORS as exc:
        raise DamagedLabelError(label_dir, f"stats.npz is unreadable: {exc}") from None
    if "nodes" in raw and "pred_node" not in raw and read_summary(label_dir).get("format", 1) < 2:
        return raw
    if nodes is None:
        nodes = SharedImages(label_dir.parent.parent, label_dir.name.split("-")[-1]).read()[1]
    return _decode_stats(raw, nodes)


def load_label(label_dir: Path, model_id: str | None = None, mmap: bool = True) -> PublishedLabel:
    """Every file of a published label, checked; the error names ``model_id`` when given."""
    try:
        summary = read_summary(label_dir)
        nodes = None
        if summary.get("format", 1) >= 2:
            outputs, nodes = _read_compact(label_dir, summary, mmap)
        else:
            outputs = read_outputs(label_dir, mmap=mmap)
        if summary.get("images", len(outputs.ids)) != len(outputs.ids):
            raise DamagedLabelError(label_dir, f"ids.npy holds {len(outputs.ids)} images, "
                                               f"summary.json says {summary['images']}")
        stats = read_stats(label_dir, nodes)
        text_nodes = text_emb = None
        if summary.get("kind") == "vlm":
            mode = "r" if mmap else None
            text_nodes = (nodes if nodes is not None and not (label_dir / "text_nodes.npy").is_file()
                          else _array(label_dir, "text_nodes", mode))
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
