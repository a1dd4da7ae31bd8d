"""Content-addressed artifacts: atomic, idempotent, verified on read."""

from __future__ import annotations

import hashlib

import pytest

from mll.errors import ArtifactIntegrityError, InvalidParameterError
from mll.hub import ArtifactStore


def test_put_get_roundtrip_and_layout(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    src = tmp_path / "w.bin"
    src.write_bytes(b"weights" * 100)
    digest = store.put_file(src)
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest()
    path = store.get(digest)
    assert path == tmp_path / "artifacts" / "sha256" / digest[:2] / digest
    assert path.read_bytes() == src.read_bytes()
    assert store.put_bytes(src.read_bytes()) == digest  # idempotent
    assert store.digests() == [digest] and digest in store
    assert not list((tmp_path / "artifacts").rglob("*.tmp"))


def test_corrupt_artifact_is_detected_and_repaired_on_rewrite(tmp_path):
    store = ArtifactStore(tmp_path)
    digest = store.put_bytes(b"abc")
    store.path_of(digest).write_bytes(b"abd")
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        store.get(digest)
    store.put_bytes(b"abc")
    assert store.get(digest).read_bytes() == b"abc"


def test_missing_artifact_and_bad_digest(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        store.get("0" * 64)
    with pytest.raises(InvalidParameterError):
        store.get("../../etc/passwd")


def test_ensure_restores_a_deleted_artifact(tmp_path):
    store = ArtifactStore(tmp_path / "a")
    src = tmp_path / "x"
    src.write_bytes(b"x" * 10)
    digest = store.put_file(src)
    store.delete(digest)
    store.ensure(digest, src)
    assert store.get(digest).read_bytes() == b"x" * 10
