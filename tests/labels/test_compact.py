"""The compact label layouts (formats 2 and 3): round trips within the documented bounds,
conversion of older labels (format 2 to 3 without changing a value), wide heads' gap encoding,
and damage detected."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from mll.labels.store import (
    FORMAT,
    STEPS,
    CompactOutputs,
    DamagedLabelError,
    LabelStore,
    Outputs,
    SharedImages,
    encode_gaps,
    encode_stats,
    label_problem,
    load_label,
    read_stats,
)

GRAPH_V, CORPUS_V = "a" * 64, "b" * 64
NODES = np.array(["n00000001", "n00000002", "n00000003"])


def _ids(n: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


def _stats(heads: int) -> dict[str, np.ndarray]:
    return {"nodes": NODES, "count": np.array([3, 0, 5], np.int32),
            "correct": np.array([2, 0, 4], np.int32), "own_mass": np.array([0.5, 0, 0.25]),
            "covered": np.array([True, False, True]),
            "predictions": np.eye(3, heads, dtype=np.int32) * 2}


def _publish(root, chash: str, outputs: Outputs, kind: str, heads: int, extra=None):
    store = LabelStore(root)
    dest = store.label_dir(chash, GRAPH_V, CORPUS_V)
    store.publish(dest, outputs, _stats(heads), extra or {},
                  {"model_id": chash[:12], "kind": kind, "images": len(outputs.ids)},
                  n_classes=heads)
    return dest


@pytest.mark.parametrize("heads", [5, 300])
def test_expert_probabilities_round_trip_within_half_a_step(tmp_path, heads):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(heads, 0.1), size=40).astype(np.float32)
    out = Outputs.from_dense(_ids(40), probs, "expert")
    dest = _publish(tmp_path, "c" * 64, out, "expert", heads)
    label = load_label(dest)
    assert isinstance(label.outputs, CompactOutputs)
    assert label.outputs.encoding == ("dense-u8" if heads <= 64 else "gaps-u8")
    assert sorted(p.name for p in dest.iterdir()) == ["outputs.npz", "stats.npz", "summary.json"]
    back = label.outputs.matrix("expert", heads)
    want = out.dense(heads)  # wide heads: the top 32 per image, as format 1 kept
    assert np.abs(back - want).max() <= 0.5 / STEPS + 1e-3 * want.max()
    rows = np.array([3, 0, 17])
    assert np.array_equal(label.outputs.matrix("expert", heads, rows), back[rows])
    assert not (dest / "ids.npy").exists()  # ids are the shared list's
    assert label.outputs.id_list() == _ids(40)
    stats = label.stats
    assert stats["nodes"].tolist() == NODES.tolist() and stats["correct"].tolist() == [2, 0, 4]
    assert stats["pred_n"].sum() == 2 * min(3, heads)


def test_vlm_embeddings_round_trip_within_half_a_step_of_their_scale(tmp_path):
    emb = np.random.default_rng(1).normal(size=(30, 16)).astype(np.float32)
    out = Outputs(np.array(_ids(30), dtype="S64"), emb.astype(np.float16))
    dest = _publish(tmp_path, "d" * 64, out, "vlm", 0,
                    {"text_nodes": NODES, "text_emb": np.ones((3, 16), np.float16)})
    label = load_label(dest)
    back = label.outputs.matrix("vlm", 0)
    scale = np.abs(out.values.astype(np.float32)).max(axis=1, keepdims=True) / 127
    assert (np.abs(back - out.values.astype(np.float32)) <= scale / 2 + 1e-6).all()
    assert label.text_nodes.tolist() == NODES.tolist()  # the shared nodes: not stored again


def test_format1_label_is_read_and_converted(tmp_path):
    store = LabelStore(tmp_path)
    dest = store.label_dir("e" * 64, GRAPH_V, CORPUS_V)
    dest.mkdir(parents=True)
    probs = np.random.default_rng(2).dirichlet(np.ones(4), size=12).astype(np.float32)
    out = Outputs.from_dense(_ids(12), probs, "expert")
    for name, arr in out.arrays().items():  # format 1, as it was published
        np.save(dest / f"{name}.npy", arr)
    np.savez(dest / "stats.npz", **_stats(4))
    (dest / "summary.json").write_text(json.dumps({"model_id": "e" * 12, "kind": "expert",
                                                   "images": 12}))
    old = load_label(dest)
    assert not isinstance(old.outputs, CompactOutputs)
    assert store.convert(dest, 4) and not store.convert(dest, 4)
    new = load_label(dest)
    assert json.loads((dest / "summary.json").read_text())["format"] == FORMAT
    assert np.abs(new.outputs.matrix("expert", 4) - old.outputs.matrix("expert", 4)).max() \
        <= 0.5 / STEPS + 1e-3
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # nothing left aside


def test_shared_list_damaged_or_replaced_is_detected(tmp_path):
    out = Outputs.from_dense(_ids(8), np.full((8, 2), 0.5, np.float32), "expert")
    dest = _publish(tmp_path, "f" * 64, out, "expert", 2)
    shared = tmp_path / "labels" / "_images" / CORPUS_V[:12] / "ids.npy"
    np.save(shared, np.array(_ids(9)[1:], dtype="S64"))  # same length, other images
    assert "shared image list" in label_problem(dest)
    shared.unlink()
    with pytest.raises(DamagedLabelError, match="shared image ids"):
        load_label(dest, "ffffffffffff")
    with pytest.raises(DamagedLabelError):
        read_stats(dest)
    shared.write_bytes(b"not an array")  # relabelling writes the list again, whole
    dest = _publish(tmp_path, "f" * 64, out, "expert", 2)
    assert label_problem(dest) is None


def test_rows_that_differ_from_the_shared_list_are_refused(tmp_path):
    from mll.errors import StoreError

    _publish(tmp_path, "1" * 64, Outputs.from_dense(_ids(8), np.full((8, 2), .5, np.float32),
                                                    "expert"), "expert", 2)
    other = Outputs.from_dense(_ids(9)[1:], np.full((8, 2), .5, np.float32), "expert")
    with pytest.raises(StoreError, match="differ from the corpus version's shared list"):
        _publish(tmp_path, "2" * 64, other, "expert", 2)


def _format2_label(root, chash: str, probs: np.ndarray, heads: int):
    """A label as format 2 wrote it: loose ``.npy`` outputs, uint16 heads with an ``indptr``."""
    store = LabelStore(root)
    dest = store.label_dir(chash, GRAPH_V, CORPUS_V)
    dest.mkdir(parents=True)
    digest = SharedImages(store.root, CORPUS_V[:12]).ensure(np.array(_ids(len(probs)), "S64"),
                                                            NODES)
    q = np.rint(probs * STEPS).astype(np.uint8)
    if heads <= 64:
        arrays, desc = {"values": q}, {"encoding": "dense-u8", "columns": heads}
    else:
        top = np.sort(np.argsort(-probs, axis=1)[:, :32], axis=1)
        vals = np.take_along_axis(q, top, 1)
        keep = vals > 0
        arrays = {"values": vals[keep], "index": top[keep].astype(np.uint16),
                  "indptr": np.concatenate([[0], np.cumsum(keep.sum(1))]).astype(np.uint32)}
        desc = {"encoding": "sparse-u8", "columns": heads}
    for name, arr in arrays.items():
        np.save(dest / f"{name}.npy", arr)
    np.savez_compressed(dest / "stats.npz", **encode_stats(_stats(heads), NODES))
    (dest / "summary.json").write_text(json.dumps(
        {"model_id": chash[:12], "kind": "expert", "images": len(probs), "format": 2,
         "images_digest": digest, "outputs": desc}))
    return store, dest


@pytest.mark.parametrize("heads", [6, 1000])
def test_format2_label_is_read_and_converted_without_changing_a_value(tmp_path, heads):
    probs = np.random.default_rng(3).dirichlet(np.full(heads, 0.05), size=25).astype(np.float32)
    store, dest = _format2_label(tmp_path, "7" * 64, probs, heads)
    old = load_label(dest)
    assert old.outputs.encoding == ("dense-u8" if heads <= 64 else "sparse-u8")
    before = old.outputs.matrix("expert", heads)
    assert store.convert(dest, heads) and not store.convert(dest, heads)
    new = load_label(dest)
    assert new.summary["format"] == FORMAT and (dest / "outputs.npz").is_file()
    assert new.outputs.encoding == ("dense-u8" if heads <= 64 else "gaps-u8")
    assert np.array_equal(new.outputs.matrix("expert", heads), before)  # lossless
    assert new.stats["correct"].tolist() == [2, 0, 4]
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # nothing left aside


def test_gaps_bridge_heads_far_apart_and_keep_empty_rows():
    heads = np.array([0, 600, 999, 3, 255, 256, 511])  # rows: [0, 600, 999], [], [3, 255, ...]
    values = np.arange(1, 8, dtype=np.uint8)
    counts = np.array([3, 0, 4])
    arrays, desc = encode_gaps(values, heads, counts, 1000)
    assert arrays["gaps"].dtype == np.uint8 and arrays["gaps"].max() <= 255
    indptr = np.concatenate([[0], np.cumsum(arrays["counts"], dtype=np.int64)])
    out = CompactOutputs(np.array(_ids(3), "S64"), desc["encoding"], arrays["values"], 1000,
                         arrays["gaps"], indptr)
    want = np.zeros((3, 1000), np.float32)
    want[[0, 0, 0, 2, 2, 2, 2], heads] = values / STEPS
    assert np.array_equal(out.dense(1000), want)
    assert np.array_equal(out.dense(1000, np.array([2, 0])), want[[2, 0]])
    with pytest.raises(ValueError, match="ascend"):
        encode_gaps(values[:2], np.array([5, 5]), np.array([2]), 10)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        encode_gaps(values[:1], np.array([10]), np.array([1]), 10)


def test_damaged_outputs_are_detected(tmp_path):
    probs = np.random.default_rng(4).dirichlet(np.full(300, 0.1), size=10).astype(np.float32)
    dest = _publish(tmp_path, "8" * 64, Outputs.from_dense(_ids(10), probs, "expert"), "expert",
                    300)
    packed = dict(np.load(dest / "outputs.npz"))
    gaps = packed["gaps"].copy()
    gaps[-1] = 255  # the last row now names a head past the 300 the model has
    np.savez_compressed(dest / "outputs.npz", **(packed | {"gaps": gaps}))
    assert "beyond the 300" in label_problem(dest)
    np.savez_compressed(dest / "outputs.npz", **{k: v for k, v in packed.items() if k != "counts"})
    assert "holds no 'counts'" in label_problem(dest)
    (dest / "outputs.npz").write_bytes(b"PK\x03\x04 cut")
    assert "outputs.npz is unreadable" in label_problem(dest)
