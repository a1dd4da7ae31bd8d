"""The metadata store: migrations, CRUD, label summaries; SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from mll.errors import StoreError, UnknownNameError
from mll.hub.records import LabelSummary, upsert_label_summary
from mll.hub.store import ClassRow, ModelRow, Store


def _row(i: int, digest: str = "a" * 64) -> ModelRow:
    chash = hashlib.sha256(str(i).encode()).hexdigest()
    row = ModelRow(id=chash[:12], content_hash=chash, name=f"m{i}", kind="expert",
                   family="onnx", source="", license="MIT", n_params=10, latency_ms=1.0,
                   input_size=28, input_channels=1, input_mean=[0.5], input_std=[0.5],
                   backbone=None, artifact_digest=digest, artifact_bytes=3, config={"k": i},
                   metrics={"heldout_accuracy": 0.5}, created_at=datetime.now(UTC))
    row.classes = [ClassRow(idx=j, name=n, wnid=None, score=None, confirmed=False)
                   for j, n in enumerate(["a", "b"])]
    return row


def test_migrations_run_once_and_are_recorded(store):
    assert set(store.revision().split(",")) == Store._heads()
    assert "hub_0001" in Store._heads() or any(h.startswith("labels") for h in Store._heads())
    assert store.migrate() == store.revision()  # a second run is a no-op
    with store.engine.connect() as conn:
        assert store.engine.dialect.has_table(conn, "models")


def test_insert_get_resolve_delete(store):
    assert store.insert(_row(1)) is True
    assert store.insert(_row(1)) is False  # same content hash: already there
    info = store.get(_row(1).id)
    assert (info.name, len(info.classes), info.metrics) == ("m1", 2, {"heldout_accuracy": 0.5})
    assert info.created_at.endswith("+00:00")
    assert store.resolve("m1") == info.id
    assert store.resolve(info.id[:6]) == info.id
    with pytest.raises(UnknownNameError, match="did you mean 'm1'"):
        store.resolve("m11")
    orphans = []
    assert store.delete(info.id, on_orphan=orphans.append)
    assert orphans == ["a" * 64] and store.infos() == []


def test_shared_artifact_is_not_orphaned(store):
    store.insert(_row(1))
    store.insert(_row(2))
    orphans = []
    store.delete(_row(1).id, on_orphan=orphans.append)
    assert orphans == [] and store.referenced("a" * 64)


def test_ambiguous_name_asks_for_the_id(store):
    a, b = _row(1), _row(2)
    b.name = a.name
    store.insert(a)
    store.insert(b)
    with pytest.raises(StoreError, match="names 2 models"):
        store.resolve("m1")


def test_labelled_flag_reads_the_label_summary_record(store):
    store.insert(_row(1))
    assert store.get(_row(1).id).labelled is False
    row = LabelSummary(model_id=_row(1).id, graph_version="g", corpus_version="c", images=7,
                       nodes_covered=7, mean_accuracy=None, labelling_seconds=0.5, bytes=7,
                       labelled_at="2026-01-02T03:04:05Z", complete=True)
    with store.write() as s:
        upsert_label_summary(s, row)
    info = store.get(_row(1).id)
    assert info.labelled and info.labels == row.to_dict()
    row.complete = False
    with store.write() as s:
        upsert_label_summary(s, row)
    assert store.get(_row(1).id).labelled is False


def test_id_prefix_collision_is_reported(store):
    a, b = _row(1), _row(2)
    b.id = a.id
    store.insert(a)
    with pytest.raises(StoreError, match="collides"):
        store.insert(b)


def test_cascade_removes_classes(store):
    store.insert(_row(1))
    store.delete(_row(1).id)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM model_classes")).scalar() == 0


def test_migrations_of_other_stages_are_discovered():
    from mll.hub.store import version_locations

    assert any(p.parts[-3] == "hub" for p in version_locations())
