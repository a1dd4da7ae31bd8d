"""Content-addressed artifact store: ``<root>/sha256/ab/<digest>``.

Rows reference artifacts by digest only. Writes go through a temporary file and a rename, so a
crash leaves either nothing or a complete file; reads re-hash the file before handing it out, so a
damaged artifact is reported instead of loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from .._io import atomic_path, sha256_file
from ..errors import ArtifactIntegrityError, InvalidParameterError

logger = logging.getLogger(__name__)


class ArtifactStore:
    """Immutable blobs named by their sha256; writing the same bytes twice does nothing."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path_of(self, digest: str) -> Path:
        if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
            raise InvalidParameterError(f"artifact digest must be 64 hex digits, got {digest!r}")
        return self.root / "sha256" / digest[:2] / digest

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and self.path_of(digest).is_file()

    def put_file(self, src: Path) -> str:
        """Copy ``src`` in and return its digest; the stored copy is re-hashed before returning."""
        digest = sha256_file(src)
        dest = self.path_of(digest)
        if not self._valid(dest, digest):
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
            if sha256_file(dest) != digest:
                dest.unlink(missing_ok=True)
                raise ArtifactIntegrityError(f"{src} changed while it was being stored")
            logger.debug("stored artifact %s (%d bytes)", digest, dest.stat().st_size)
        return digest

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        dest = self.path_of(digest)
        if not self._valid(dest, digest):
            with atomic_path(dest) as tmp:
                tmp.write_bytes(data)
        return digest

    def ensure(self, digest: str, src: Path) -> None:
        """Make sure ``digest`` is stored, copying it from ``src`` if it went missing."""
        if not self._valid(self.path_of(digest), digest) and self.put_file(src) != digest:
            raise ArtifactIntegrityError(f"{src} changed while it was being added")

    def get(self, digest: str) -> Path:
        """The path of a stored artifact after checking its hash."""
        path = self.path_of(digest)
        if not path.is_file():
            raise ArtifactIntegrityError(f"artifact {digest} is missing from {self.root}")
        actual = sha256_file(path)
        if actual != digest:
            raise ArtifactIntegrityError(
                f"artifact {digest} is corrupt (its content hashes to {actual}); re-add the model")
        return path

    def delete(self, digest: str) -> None:
        self.path_of(digest).unlink(missing_ok=True)

    def digests(self) -> list[str]:
        base = self.root / "sha256"
        return sorted(p.name for p in base.glob("??/*") if p.is_file()) if base.is_dir() else []

    def size(self, digest: str) -> int:
        return self.path_of(digest).stat().st_size

    @staticmethod
    def _valid(path: Path, digest: str) -> bool:
        """True if ``path`` exists with the right content; a damaged copy is replaced."""
        if not path.is_file():
            return False
        if sha256_file(path) == digest:
            return True
        logger.warning("replacing corrupt artifact %s", digest)
        return False
