"""The labels stage's ``LabelSummary`` row: one typed record, upserted, read by ``mll hub show``;
on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from click.testing import CliRunner
from sqlalchemy import func, select

from mll.hub import Hub
from mll.hub.records import Base
from mll.hub.store import ClassRow, ModelRow, Store
from mll.labels.summaries import LabelSummary, read_summaries, record_summary


def _model(i: int = 1) -> ModelRow:
    chash = hashlib.sha256(f"summary-{i}".encode()).hexdigest()
    row = ModelRow(id=chash[:12], content_hash=chash, name=f"m{i}", kind="expert",
                   family="onnx", source="", license="MIT", n_params=10, latency_ms=1.0,
                   input_size=28, input_channels=1, input_mean=[0.5], input_std=[0.5],
                   backbone=None, artifact_digest="a" * 64, artifact_bytes=3, config={},
                   metrics={}, created_at=datetime.now(UTC))
    row.classes = [ClassRow(idx=0, name="a", wnid=None, score=None, confirmed=False)]
    return row


def _summary(model_id: str, **changes) -> dict:
    """What ``publish_label`` hands to ``record_summary`` for an expert."""
    return {"model_id": model_id, "content_hash": "c" * 64, "kind": "expert",
            "graph_version": "g" * 64, "corpus_version": "k" * 64, "images": 40,
            "labelling_seconds": 1.5, "labelled_at": "2026-01-02T03:04:05Z",
            "nodes_covered": 4, "nodes": 9, "images_in_domain": 12,
            "mean_accuracy_own_classes": 0.75, "detector": {}, "bytes": 1234} | changes


def _count(store: Store) -> int:
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(LabelSummary))


def test_upsert_twice_keeps_one_row_with_the_latest_values(store):
    model = _model()
    store.insert(model)
    assert read_summaries(store, [model.id]) == {} and store.get(model.id).labelled is False
    record_summary(store, _summary(model.id))
    record_summary(store, _summary(model.id, corpus_version="n" * 64, images=50, bytes=99,
                                   mean_accuracy_own_classes=0.5,
                                   labelled_at="2026-02-03T04:05:06Z"))
    assert _count(store) == 1
    row = read_summaries(store, [model.id, "missing"])[model.id]
    assert isinstance(row, LabelSummary)
    assert (row.corpus_version, row.images, row.bytes, row.mean_accuracy, row.labelled_at) == (
        "n" * 64, 50, 99, 0.5, "2026-02-03T04:05:06Z")
    info = store.get(model.id)
    assert info.labelled and info.labels == row.to_dict()
    assert info.labels["graph_version"] == "g" * 64 and info.labels["complete"] is True


def test_vlm_accuracy_incomplete_rows_and_cascade(store):
    model = _model()
    store.insert(model)
    vlm = _summary(model.id, kind="vlm", zero_shot_accuracy=0.25)
    del vlm["mean_accuracy_own_classes"]
    assert record_summary(store, vlm).mean_accuracy == 0.25
    row = read_summaries(store, [model.id])[model.id]
    row.complete = False  # a typed record may be written as is
    record_summary(store, row)
    assert _count(store) == 1 and store.get(model.id).labelled is False
    store.delete(model.id)
    assert _count(store) == 0


def test_mapped_class_matches_the_labels_migration(store):
    """The migration that creates the table and the mapped class agree on every column."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def only_summaries(obj, name, type_, reflected, compare_to):
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is None or table.name == LabelSummary.__tablename__

    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                     "include_object": only_summaries})
        assert compare_metadata(ctx, Base.metadata) == []
    assert LabelSummary.__table__.metadata is ModelRow.__table__.metadata


def test_hub_show_reads_the_summary(tmp_path, monkeypatch):
    hub_dir = tmp_path / "hub"
    model = _model()
    with Hub.open(hub_dir) as hub:
        hub.store.insert(model)
        record_summary(hub.store, _summary(model.id))
        record_summary(hub.store, _summary(model.id, images=41))
    monkeypatch.delenv("MLL_DB", raising=False)
    from mll.cli import cli

    result = CliRunner().invoke(cli, ["hub", "show", model.id, "--hub", str(hub_dir), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["labelled"] is True
    assert shown["labels"] == {"model_id": model.id, "graph_version": "g" * 64,
                               "corpus_version": "k" * 64, "images": 41, "nodes_covered": 4,
                               "mean_accuracy": 0.75, "labelling_seconds": 1.5, "bytes": 1234,
                               "labelled_at": "2026-01-02T03:04:05Z", "complete": True}
    table = CliRunner().invoke(cli, ["hub", "list", "--hub", str(hub_dir)],
                               catch_exceptions=False).stdout
    assert "yes" in table.splitlines()[1]
