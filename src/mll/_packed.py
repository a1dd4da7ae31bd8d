"""Lists of strings stored as one UTF-8 byte blob plus offsets.

The graph and the corpus manifest keep their text columns this way inside ``.npz`` files: plain
arrays load without pickle (``allow_pickle=False``) and a string is decoded only when read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pack_texts(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(blob, offsets)``: string ``i`` is ``blob[offsets[i]:offsets[i + 1]]`` in UTF-8."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def unpack_texts(blob: np.ndarray, offsets: np.ndarray) -> tuple[str, ...]:
    """Every string of a :func:`pack_texts` pair, decoded at once."""
    raw = blob.tobytes()
    return tuple(raw[offsets[i]: offsets[i + 1]].decode("utf-8") for i in range(len(offsets) - 1))
