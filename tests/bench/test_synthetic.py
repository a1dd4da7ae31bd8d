"""Synthetic hubs drawn from the labelled quick starter hub: written through the hub's store and
candidate index, seeded, idempotent, the same on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mll.bench.synthetic import FAMILY, build_synthetic_hub
from mll.errors import InvalidParameterError
from mll.hub import Hub
from mll.hub.records import LabelServing, LabelSummary
from mll.labels.store import FORMAT, LabelStore, load_label


@pytest.mark.parametrize("bad", [{"models": 0}, {"models": 2.5}, {"vlm_share": 1.5},
                                 {"max_classes": 1}, {"seed": -1}, {"batch": True}])
def test_bad_arguments_are_refused_before_anything_is_read(bad, tmp_path):
    args = {"models": 10} | bad
    with pytest.raises(InvalidParameterError, match="synthetic hub: "):
        build_synthetic_hub(tmp_path / "no-source", tmp_path / "dest", **args)
    assert not (tmp_path / "dest").exists()


@pytest.mark.slow
def test_200_models_drawn_from_the_starter_hub(starter_hub, tmp_path, pg_url):
    report = build_synthetic_hub(starter_hub, tmp_path / "syn", 200, seed=3, vlm_share=0.05,
                                 batch=64)
    assert report.models == 200 and report.experts + report.vlms == 200 and report.vlms > 0
    with Hub.open(starter_hub, create=False) as real:
        reals = {m.id: m for m in real.list()}
    with Hub.open(tmp_path / "syn", create=False) as hub:
        models = hub.list()
        assert len(models) == 200 and {m.family for m in models} == {FAMILY}
        for m in models:
            template = reals[m.config["template"]]
            assert m.kind == template.kind
            assert m.labelled == (m.kind == "expert")  # VLMs have no label files
            if m.kind == "expert":  # a subset of the real expert's mapped heads
                assert 1 <= len(m.classes) <= 64
                assert {(c.name, c.wnid) for c in m.classes} <= {
                    (c.name, c.wnid) for c in template.classes}
        with hub.store.read() as s:
            rows = s.scalar(select(func.count()).select_from(LabelServing))
            assert s.scalar(select(func.count()).select_from(LabelSummary)) == 200
        assert rows == report.index_rows
        some = next(m for m in models if m.kind == "expert")  # a compact label on disk
        (ldir,) = LabelStore(tmp_path / "syn").published_dirs(some.content_hash)
        label = load_label(ldir, some.id)
        assert label.summary["format"] == FORMAT and label.outputs.values.dtype.name == "uint8"
        assert label.outputs.values.shape[1] == len(some.classes)
        assert label.stats["count"].sum() == label.summary["images"]
        root = "n00001740"  # every expert serves the root; VLMs do where images are measured
        answer = hub.serving(root, limit=None)
        assert len(answer) == 200
        assert [r.accuracy for r in answer if r.accuracy is not None] == sorted(
            (r.accuracy for r in answer if r.accuracy is not None), reverse=True)
        sqlite_answer = [r.to_dict() for r in hub.serving("n02084071")]
    again = build_synthetic_hub(starter_hub, tmp_path / "syn", 200, seed=3, vlm_share=0.05)
    assert again.models == 0  # the same seed draws the same ids: nothing new
    on_pg = build_synthetic_hub(starter_hub, tmp_path / "pg", 200, db=pg_url, seed=3,
                                vlm_share=0.05, batch=64)
    assert on_pg.index_rows == report.index_rows
    try:
        with Hub.open(tmp_path / "pg", db=pg_url) as hub:
            assert [r.to_dict() for r in hub.serving("n02084071")] == sqlite_answer
    finally:
        from sqlalchemy import MetaData

        with Hub.open(tmp_path / "pg", db=pg_url) as hub:  # a shared server: leave it empty
            meta = MetaData()
            meta.reflect(hub.store.engine)
            meta.drop_all(hub.store.engine)


def _linked_copy(source, dest) -> None:
    """A private hub sharing ``source``'s immutable files (hard links), its database copied."""
    import os
    import shutil
    import sqlite3

    dest.mkdir()
    for name in ("artifacts", "corpus", "graph", "labels"):
        if (source / name).exists():
            shutil.copytree(source / name, dest / name, copy_function=os.link)
    src = sqlite3.connect(f"file:{source / 'mll.db'}?mode=ro", uri=True)
    dst = sqlite3.connect(dest / "mll.db")
    src.backup(dst)
    dst.close()
    src.close()


@pytest.mark.slow
def test_synthetic_experts_run_as_their_labels_say(starter_hub, tmp_path):
    """Run on sample images, a synthetic expert gives the outputs its label holds (up to the
    label's 1/255 steps and the source's last-bit float drift), through ``Hub.load``."""
    import numpy as np

    from mll.errors import NotBuiltError
    from mll.selection import LabelTable

    _linked_copy(starter_hub, tmp_path / "hub")
    build_synthetic_hub(starter_hub, tmp_path / "hub", 6, seed=5, vlm_share=0.0)
    table = LabelTable(tmp_path / "hub")
    ids = list(table.image_ids[:: max(1, len(table.image_ids) // 48)][:48])
    images = table.corpus.load(ids)
    rows = [table.image_ids.index(i) for i in ids]
    synthetic = [m for m in table.hub.list() if m.family == FAMILY]
    assert len(synthetic) == 6
    agree = []
    for m in synthetic:
        assert m.artifact_bytes > 0 and m.backbone is None
        label = np.asarray(table.models[m.id].outputs, np.float32)[rows]
        run = table.hub.load(m.id).predict_proba(images)
        assert run.shape == label.shape
        assert np.abs(run - label).max() < 0.03
        agree.append((run.argmax(1) == label.argmax(1)).mean())
    assert np.mean(agree) >= 0.95
    table.close()
    # in a hub without the source model, loading one is a clear error
    build_synthetic_hub(starter_hub, tmp_path / "alone", 2, seed=5, vlm_share=0.0)
    with Hub.open(tmp_path / "alone", create=False) as hub:
        with pytest.raises(NotBuiltError, match="synthetic copy of .* not in this hub"):
            hub.load(hub.list()[0].id)
