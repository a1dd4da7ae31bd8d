"""Labelling a hub that holds broken models: each is reported, the others are labelled.

The hub is built here: the WordNet graph of the shared test hub, a few sample images imported
from a folder, one working ONNX expert and two broken ones (an artifact whose weights lived in a
file that was never stored, and an artifact damaged on disk).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from mll.cli import main
from mll.hub import Hub
from mll.labels import label_hub

contract = pytest.mark.contract
CLASSES = ["dog\tn02084071", "domestic cat\tn02121808", "bird\tn01503061"]


def _onnx(path: Path, weight: np.ndarray, external: bool = False) -> str:
    """28x28 gray -> pooled -> (N, 1) @ weight (1, 3); ``external`` keeps the weight in a
    Constant node whose bytes live in ``weights.bin`` beside the model."""
    if external:
        (path.parent / "weights.bin").write_bytes(weight.tobytes())
        tensor = numpy_helper.from_array(weight, "w")
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in {"location": "weights.bin", "offset": "0",
                           "length": str(weight.nbytes)}.items():
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        weights, inits = [helper.make_node("Constant", [], ["w"], value=tensor)], []
    else:
        weights, inits = [], [numpy_helper.from_array(weight, "w")]
    nodes = [*weights, helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["scores"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 28, 28])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 3])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture(scope="module")
def broken_hub(tmp_path_factory, real_hub) -> tuple[Path, dict[str, str]]:
    """A labelable hub with models ``good``, ``external`` and ``corrupt`` (name -> id)."""
    import mll.hub.adapters.onnx as onnx_adapter
    from mll.corpus.folders import import_folder
    from mll.graph import open_graph

    root = tmp_path_factory.mktemp("broken")
    hub = root / "hub"
    open_graph(real_hub, build=True)
    shutil.copytree(real_hub / "graph", hub / "graph", ignore=shutil.ignore_patterns("captions-*"))
    rng = np.random.default_rng(0)
    for wnid in ("n02084071", "n02121808"):
        (root / "samples" / wnid).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(
                root / "samples" / wnid / f"{i}.png")
    import_folder(hub, root / "samples", "sample", task="pets",
                  resolver=lambda names: [None] * len(names))
    ids = {}
    with Hub.open(hub) as h:
        ids["good"] = h.add(_onnx(root / "good.onnx", np.array([[1.0, 2.0, 3.0]], np.float32)),
                            classes=CLASSES, name="good").id
        info = h.add(_onnx(root / "corrupt.onnx", np.array([[3.0, 2.0, 1.0]], np.float32)),
                     classes=CLASSES, name="corrupt")
        ids["corrupt"] = info.id
        artifact = h.artifacts.path_of(info.artifact_digest)
        artifact.chmod(0o644)
        artifact.write_bytes(artifact.read_bytes()[:-7] + b"damaged")
        mp = pytest.MonkeyPatch()  # what an mll without the external-data check let in
        try:
            mp.setattr(onnx_adapter, "check_self_contained", lambda model, name: None)
            mp.chdir(root)
            ids["external"] = h.add(_onnx(root / "external.onnx",
                                          np.array([[2.0, 1.0, 3.0]], np.float32), external=True),
                                    classes=CLASSES, name="external").id
        finally:
            mp.undo()
    return hub, ids


@contract("labelling", "a hub with a working model, one whose artifact is damaged and one whose "
                       "weights were never stored", "the working model is labelled; each broken "
                                                    "one is reported with its reason and fix")
def test_one_broken_model_does_not_stop_the_others(broken_hub, tmp_path):
    hub = tmp_path / "hub"
    shutil.copytree(broken_hub[0], hub)
    ids = broken_hub[1]
    report = label_hub(hub, show_progress=False)
    assert report.models_labelled == [ids["good"]]
    assert report.per_model[ids["good"]]["images"] == 6
    failed = {f["model_id"]: f for f in report.failed}
    assert set(failed) == {ids["corrupt"], ids["external"]}
    assert "is corrupt" in failed[ids["corrupt"]]["reason"]
    assert "external file ('weights.bin')" in failed[ids["external"]]["reason"]
    for f in failed.values():
        assert f"mll hub remove {f['model_id']}" in f["fix"]
        assert f"mll label --model {f['model_id']}" in f["fix"]
        assert "\n" not in f["reason"]
    assert len(list(hub.glob("labels/*/*/summary.json"))) == 1


@contract("labelling", "mll label on that hub, text and --json",
          "one stderr line per failed model, a 'failed' list in the JSON, exit code 2")
def test_cli_reports_failures_and_exits_2(broken_hub, tmp_path, capsys):
    hub = tmp_path / "hub"
    shutil.copytree(broken_hub[0], hub)
    ids = broken_hub[1]
    assert main(["label", "--hub", str(hub), "--json"]) == 2
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert doc["models_labelled"] == [ids["good"]]
    assert sorted(f["model_id"] for f in doc["failed"]) == sorted([ids["corrupt"],
                                                                    ids["external"]])
    err = out.err.strip().splitlines()
    assert len([line for line in err if line.startswith("failed ")]) == 2
    assert err[-1].startswith("Error: 2 model(s) could not be labelled")
    assert main(["label", "--hub", str(hub)]) == 2  # again: the good one is up to date
    out = capsys.readouterr()
    assert "labelled 0 model(s), 1 already up to date" in out.out
    assert any(line.startswith(f"failed {ids['external']} (external): ")
               for line in out.err.splitlines())
