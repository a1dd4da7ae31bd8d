"""Hostile and careless ONNX files: external data anywhere, custom ops, huge inputs, odd outputs.

Each model is built here with ``onnx.helper``: an image batch ``x`` is pooled to one number per
image and multiplied by a (1, C) weight, a valid classifier of any input size, then altered.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mll.cli import main
from mll.errors import InvalidParameterError, LimitExceededError
from mll.hub import Hub

contract = pytest.mark.contract
pytestmark = pytest.mark.filterwarnings("ignore:.*classes left unmapped")  # no graph: expected
CLASSES = ["sandal", "sneaker", "boot"]


def _model(nodes_after: list | None = None, *, side: int | str = 28, batch: int | str = "n",
           out_shape: tuple = ("n", 3), out_name: str = "scores", weight=None,
           extra_opsets: tuple = ()) -> onnx.ModelProto:
    """x (batch, 1, side, side) -> pool -> (batch, 1) @ w (1, 3) -> ``logits``, then
    ``nodes_after`` (which must produce ``out_name`` of the declared ``out_shape``)."""
    w = weight if weight is not None else numpy_helper.from_array(
        np.array([[1.0, 2.0, 3.0]], dtype=np.float32), "w")
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("MatMul", ["flat", "w"], ["logits"]),
             *(nodes_after or [helper.make_node("Identity", ["logits"], ["scores"])])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, side, side])
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(out_shape))
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    *extra_opsets])
    model.ir_version = 8
    return model


def _external(name: str, array: np.ndarray, location: str) -> TensorProto:
    """A tensor whose bytes live in ``location`` (written beside the model by the caller)."""
    t = numpy_helper.from_array(array, name)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, "offset": "0",
                       "length": str(array.nbytes)}.items():
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def _save(model: onnx.ModelProto, path) -> str:
    onnx.save(model, str(path))
    return str(path)


def _with_external_constant(tmp_path) -> str:
    """The weight comes from a Constant node whose tensor points at a sibling file."""
    weight = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    (tmp_path / "weights.bin").write_bytes(weight.tobytes())
    model = _model()
    model.graph.ClearField("initializer")
    model.graph.node.insert(0, helper.make_node("Constant", [], ["w"], name="w_const",
                                                value=_external("w", weight, "weights.bin")))
    return _save(model, tmp_path / "constant.onnx")


@pytest.fixture
def hub(tmp_path):
    with Hub.open(tmp_path / "hub") as h:
        yield h


def _nothing_stored(hub: Hub) -> bool:
    return hub.list() == [] and hub.artifacts.digests() == []


@contract("model files", "a self-contained ONNX classifier of standard operators",
          "accepted (each refusal below alters only this model)")
def test_the_base_model_is_accepted(hub, tmp_path):
    info = hub.add(_save(_model(), tmp_path / "ok.onnx"), classes=CLASSES)
    assert info.family == "onnx" and len(info.classes) == 3


@contract("model files", "an ONNX Constant node whose tensor lives in an external file",
          "refused at hub add naming the node and the file; nothing stored")
def test_external_data_in_a_constant_node(hub, tmp_path):
    with pytest.raises(InvalidParameterError, match=r"Constant node 'w_const' keeps its data in "
                                                    r"an external file \('weights.bin'\)"):
        hub.add(_with_external_constant(tmp_path), classes=CLASSES)
    assert _nothing_stored(hub)


@contract("model files", "an ONNX If branch (subgraph) with an external-data Constant",
          "refused at hub add, subgraphs are searched too")
def test_external_data_inside_a_subgraph(hub, tmp_path):
    weight = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["w_then"], value=_external("w_then", weight,
                                                                      "/etc/passwd"))],
        "then", [], [helper.make_tensor_value_info("w_then", TensorProto.FLOAT, [1, 3])])
    other = helper.make_graph(
        [helper.make_node("Constant", [], ["w_else"],
                          value=numpy_helper.from_array(weight, "w_else"))],
        "else", [], [helper.make_tensor_value_info("w_else", TensorProto.FLOAT, [1, 3])])
    model = _model()
    model.graph.ClearField("initializer")
    model.graph.node.insert(0, helper.make_node(
        "Constant", [], ["flag"], value=numpy_helper.from_array(np.array(True), "flag")))
    model.graph.node.insert(1, helper.make_node("If", ["flag"], ["w"], then_branch=branch,
                                                else_branch=other))
    with pytest.raises(InvalidParameterError, match=r"If node .* > Constant node .*"
                                                    r"'/etc/passwd'"):
        hub.add(_save(model, tmp_path / "branch.onnx"), classes=CLASSES)
    assert _nothing_stored(hub)


@contract("model files", "an ONNX model with external data stored by an older mll",
          "hub verify reports it damaged (exit 2); loading it is a one-line error")
def test_verify_catches_a_stored_external_data_model(tmp_path, monkeypatch, capsys):
    import mll.hub.adapters.onnx as onnx_adapter

    path = _with_external_constant(tmp_path)
    hub_dir = tmp_path / "hub"
    with monkeypatch.context() as m:  # what an mll without the check let in
        m.setattr(onnx_adapter, "check_self_contained", lambda model, name: None)
        m.chdir(tmp_path)  # where onnx's checker looks for the external file
        with Hub.open(hub_dir) as h:
            model_id = h.add(path, classes=CLASSES).id
    assert main(["hub", "verify", "--hub", str(hub_dir), "--json"]) == 2
    out = capsys.readouterr()
    damaged = json.loads(out.out)["damaged"]
    assert [d["id"] for d in damaged] == [model_id]
    assert "external file ('weights.bin')" in damaged[0]["error"]
    assert out.err.strip().splitlines()[-1].startswith("Error: 1 damaged artifact(s)")
    with Hub.open(hub_dir) as h, pytest.raises(InvalidParameterError, match="external file"):
        h.load(model_id)


@contract("model files", "an ONNX model declaring an 8000x8000 image input",
          "refused before it runs (MLL_MAX_INPUT_SIDE, 1024 by default)")
def test_huge_declared_input(hub, tmp_path):
    with pytest.raises(LimitExceededError, match=r"8000x8000.*MLL_MAX_INPUT_SIDE"):
        hub.add(_save(_model(side=8000), tmp_path / "big.onnx"), classes=CLASSES)
    assert _nothing_stored(hub)


@contract("model files", "a dynamic-size ONNX model with -o input_size=8000",
          "refused by the same input-side limit")
def test_huge_input_size_option(hub, tmp_path):
    path = _save(_model(side="s"), tmp_path / "dyn.onnx")
    with pytest.raises(LimitExceededError, match="MLL_MAX_INPUT_SIDE"):
        hub.add(path, classes=CLASSES, options={"input_size": 8000})
    assert hub.add(path, classes=CLASSES, options={"input_size": 32}).input_spec.size == 32


@contract("model files", "an ONNX model with a fixed batch of 100000 images",
          "refused: every run would pad to that batch; export a dynamic batch axis")
def test_huge_fixed_batch(hub, tmp_path):
    with pytest.raises(InvalidParameterError, match="fixed batch of 100000"):
        hub.add(_save(_model(batch=100000), tmp_path / "batch.onnx"), classes=CLASSES)


@contract("model files", "an ONNX model using a custom operator (domain my.custom)",
          "refused at hub add naming the operator")
def test_custom_operator(hub, tmp_path):
    model = _model([helper.make_node("Fancy", ["logits"], ["scores"], domain="my.custom")],
                   extra_opsets=(helper.make_opsetid("my.custom", 1),))
    with pytest.raises(InvalidParameterError, match="custom operator my.custom::Fancy"):
        hub.add(_save(model, tmp_path / "custom.onnx"), classes=CLASSES)
    assert _nothing_stored(hub)


def _axes(name: str, values: list[int]) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name],
                            value=numpy_helper.from_array(np.array(values, dtype=np.int64), name))


@contract("model files", "an ONNX expert whose output is (N,), (1, 3) for N images, or "
                         "(N, 3, 2)", "one-line error at hub add naming the shape; nothing stored")
@pytest.mark.parametrize("shape", ["(N,)", "(1, 3)", "(N, 3, 2)"])
def test_wrong_output_shapes(hub, tmp_path, shape):
    tails = {
        "(N,)": [_axes("ax", [1]),
                 helper.make_node("ReduceSum", ["logits", "ax"], ["scores"], keepdims=0)],
        "(1, 3)": [_axes("ax", [0]),
                   helper.make_node("ReduceSum", ["logits", "ax"], ["scores"], keepdims=1)],
        "(N, 3, 2)": [_axes("ax", [2]), helper.make_node("Unsqueeze", ["logits", "ax"], ["u"]),
                      helper.make_node("Concat", ["u", "u"], ["scores"], axis=2)],
    }
    declared = {"(N,)": ("n",), "(1, 3)": (1, 3), "(N, 3, 2)": ("n", 3, 2)}[shape]
    classes = [f"c{i}" for i in range(6)] if shape == "(N, 3, 2)" else CLASSES
    with pytest.raises(InvalidParameterError, match=r"outputs float32 of shape \(.*\) for a "
                                                    r"batch of 4 images; an expert must output"):
        hub.add(_save(_model(tails[shape], out_shape=declared), tmp_path / "shape.onnx"),
                classes=classes)
    assert _nothing_stored(hub)


@contract("model files", "an ONNX expert with a (N, C, 1, 1) convolutional head output",
          "accepted as C classes")
def test_trailing_unit_axes_are_accepted(hub, tmp_path):
    tail = [_axes("ax", [2, 3]), helper.make_node("Unsqueeze", ["logits", "ax"], ["scores"])]
    info = hub.add(_save(_model(tail, out_shape=("n", 3, 1, 1)), tmp_path / "conv.onnx"),
                   classes=CLASSES)
    probs = hub.load(info.id).predict_proba([np.zeros((28, 28), dtype=np.uint8)] * 2)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1)


@contract("model files", "an ONNX graph onnxruntime cannot load (a type mismatch)",
          "one-line error from hub add with onnxruntime's reason, no traceback")
def test_unloadable_graph_is_a_one_line_cli_error(tmp_path, capsys):
    model = _model([helper.make_node("Cast", ["logits"], ["wide"], to=TensorProto.DOUBLE),
                    helper.make_node("Add", ["wide", "logits"], ["scores"])])
    path = tmp_path / "mismatch.onnx"
    path.write_bytes(model.SerializeToString())  # the checker would refuse it: skip onnx.save
    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    code = main(["hub", "add", str(path), "--classes", str(tmp_path / "classes.txt"),
                 "--hub", str(tmp_path / "hub")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("Error: ")
    assert "ONNX" in err[0] and "Traceback" not in err[0]
