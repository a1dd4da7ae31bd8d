"""Image records and the columnar table that stores them (units, imports and the manifest).

A corpus holds up to a few hundred thousand records; keeping every text column as codes into a
sorted vocabulary makes the manifest a few megabytes that load in milliseconds, and filtering by
role, source or node a vectorised comparison. Tables are saved as ``.npz`` of plain arrays (no
pickle).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_path
from .._packed import pack_texts, unpack_texts

ROLES = ("train", "sample", "eval")
TEXT_COLUMNS = ("source", "orig_id", "license", "style", "wnid", "role", "augmentation")
CODEC_RAW, CODEC_PNG = 0, 1


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One image of the corpus and where it came from.

    ``image_id`` is the sha256 of the canonical pixels (see :func:`mll.corpus.store.image_id`),
    ``augmentation`` names how the stored pixels were derived from the original (``none`` when
    they are the original's).
    """

    image_id: str
    source: str
    orig_id: str
    license: str
    style: str
    wnid: str
    role: str
    augmentation: str


@dataclass(frozen=True, slots=True)
class Location:
    """Where an image's encoded bytes live in the image store."""

    pack: str
    offset: int
    length: int
    codec: int
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class Categorical:
    """A text column as int32 codes into a sorted vocabulary."""

    codes: np.ndarray
    vocab: tuple[str, ...]

    @classmethod
    def from_values(cls, values: Sequence[str]) -> Categorical:
        vocab = tuple(sorted(set(values)))
        lookup = {v: i for i, v in enumerate(vocab)}
        return cls(np.fromiter((lookup[v] for v in values), dtype=np.int32, count=len(values)),
                   vocab)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> str:
        return self.vocab[int(self.codes[i])]

    def values(self) -> list[str]:
        return [self.vocab[c] for c in self.codes.tolist()]

    def mask(self, wanted: Iterable[str]) -> np.ndarray:
        """Rows whose value is one of ``wanted``."""
        want = set(wanted)
        hits = np.array([i for i, v in enumerate(self.vocab) if v in want], dtype=np.int32)
        return np.isin(self.codes, hits)

    def take(self, idx: np.ndarray) -> Categorical:
        return Categorical(self.codes[idx], self.vocab)

    def normalised(self) -> Categorical:
        """The same column with unused vocabulary entries dropped (canonical for hashing)."""
        used = np.unique(self.codes)
        remap = np.full(len(self.vocab), -1, dtype=np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        return Categorical(remap[self.codes] if len(self.codes) else self.codes,
                           tuple(self.vocab[i] for i in used.tolist()))

    @staticmethod
    def concat(parts: Sequence[Categorical]) -> Categorical:
        vocab = tuple(sorted({v for p in parts for v in p.vocab}))
        lookup = {v: i for i, v in enumerate(vocab)}
        codes = [np.array([lookup[v] for v in p.vocab], dtype=np.int32)[p.codes] if len(p) else
                 np.zeros(0, dtype=np.int32) for p in parts]
        return Categorical(np.concatenate(codes) if codes else np.zeros(0, np.int32), vocab)


@dataclass(frozen=True)
class RecordTable:
    """Records plus the location of each image's bytes, as parallel arrays.

    ``digest`` is ``(N, 32)`` uint8 (the raw sha256 of each image); ``text`` holds one
    :class:`Categorical` per name in :data:`TEXT_COLUMNS`.
    """

    digest: np.ndarray
    text: dict[str, Categorical]
    pack: Categorical
    offset: np.ndarray
    length: np.ndarray
    codec: np.ndarray
    shape: np.ndarray

    @classmethod
    def build(cls, records: Sequence[ImageRecord], locations: Sequence[Location]) -> RecordTable:
        digest = np.array([bytes.fromhex(r.image_id) for r in records], dtype="S32")
        digest = digest.view(np.uint8).reshape(len(records), 32)
        text = {c: Categorical.from_values([getattr(r, c) for r in records]) for c in TEXT_COLUMNS}
        return cls(digest=digest, text=text,
                   pack=Categorical.from_values([loc.pack for loc in locations]),
                   offset=np.array([loc.offset for loc in locations], dtype=np.int64),
                   length=np.array([loc.length for loc in locations], dtype=np.int64),
                   codec=np.array([loc.codec for loc in locations], dtype=np.uint8),
                   shape=np.array([loc.shape for loc in locations], dtype=np.int32
                                  ).reshape(len(locations), 3))

    @classmethod
    def empty(cls) -> RecordTable:
        return cls.build([], [])

    def __len__(self) -> int:
        return len(self.digest)

    def image_id(self, i: int) -> str:
        return self.digest[i].tobytes().hex()

    def image_ids(self) -> list[str]:
        return [row.tobytes().hex() for row in self.digest]

    def record(self, i: int) -> ImageRecord:
        return ImageRecord(self.image_id(i), *(self.text[c][i] for c in TEXT_COLUMNS))

    def records(self) -> list[ImageRecord]:
        cols = [self.text[c].values() for c in TEXT_COLUMNS]
        return [ImageRecord(iid, *vals) for iid, *vals in zip(self.image_ids(), *cols, strict=True)]

    def location(self, i: int) -> Location:
        return Location(self.pack[i], int(self.offset[i]), int(self.length[i]),
                        int(self.codec[i]), tuple(int(x) for x in self.shape[i]))

    def take(self, idx: np.ndarray) -> RecordTable:
        return RecordTable(self.digest[idx], {c: col.take(idx) for c, col in self.text.items()},
                           self.pack.take(idx), self.offset[idx], self.length[idx],
                           self.codec[idx], self.shape[idx])

    @staticmethod
    def concat(tables: Sequence[RecordTable]) -> RecordTable:
        if not tables:
            return RecordTable.empty()
        return RecordTable(
            np.concatenate([t.digest for t in tables]),
            {c: Categorical.concat([t.text[c] for t in tables]) for c in TEXT_COLUMNS},
            Categorical.concat([t.pack for t in tables]),
            np.concatenate([t.offset for t in tables]), np.concatenate([t.length for t in tables]),
            np.concatenate([t.codec for t in tables]), np.concatenate([t.shape for t in tables]))

    def content_hash(self) -> str:
        """sha256 of the records in order (ids and text columns, not storage locations).

        Two builds that yield the same records in the same order have the same hash, wherever
        their bytes happen to be stored.
        """
        h = hashlib.sha256(self.digest.tobytes())
        for c in TEXT_COLUMNS:
            col = self.text[c].normalised()
            h.update(c.encode() + b"\0" + "\n".join(col.vocab).encode() + b"\0")
            h.update(col.codes.astype("<i4").tobytes())
        return h.hexdigest()

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        arrays = {"digest": self.digest, "offset": self.offset, "length": self.length,
                  "codec": self.codec, "shape": self.shape}
        for name, col in [*self.text.items(), ("pack", self.pack)]:
            col = col.normalised()
            arrays[f"{name}.codes"] = col.codes
            arrays[f"{name}.blob"], arrays[f"{name}.off"] = pack_texts(col.vocab)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> RecordTable:
        with np.load(path, allow_pickle=False) as data:
            a = {k: data[k] for k in data.files}

        def cat(name: str) -> Categorical:
            return Categorical(a[f"{name}.codes"], unpack_texts(a[f"{name}.blob"], a[f"{name}.off"]))

        return cls(a["digest"], {c: cat(c) for c in TEXT_COLUMNS}, cat("pack"), a["offset"],
                   a["length"], a["codec"], a["shape"])
