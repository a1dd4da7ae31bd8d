"""Model files with broken or crafted configs, headers and weights: clear errors, nothing stored."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest

from mll.cli import main
from mll.errors import InvalidParameterError, LimitExceededError, MLLWarning

contract = pytest.mark.contract
CNN = {"arch": "small-cnn", "arch_config": {"n_classes": 3, "width": 4}}
CLASSES = ["sandal", "sneaker", "boot"]


@pytest.fixture
def hub(tmp_path):
    from mll.hub import Hub

    (tmp_path / "hub").mkdir()
    with Hub.open(tmp_path / "hub") as h:
        yield h


def _state(dtype=None) -> dict:
    import torch

    from mll.hub.archs import build

    torch.manual_seed(0)
    state = build("small-cnn", CNN["arch_config"]).state_dict()
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    return state


def _bundle(path, meta: dict[str, str], state: dict | None = None):
    """A safetensors file with mll header entries, as a careless or hostile tool would write."""
    from safetensors.torch import save_file

    save_file(state if state is not None else _state(), str(path), metadata=meta)
    return path


def _meta(config=None, **extra) -> dict[str, str]:
    return {"mll.family": "torch-safetensors", "mll.config": json.dumps(config or CNN), **extra}


def _nothing_stored(hub) -> bool:
    return hub.list() == [] and not list((hub.paths.root / "artifacts").rglob("*.safetensors"))


@contract("model files", "safetensors bundle whose mll.config header is not JSON",
          "error naming the file and the header entry; nothing stored")
def test_config_not_json(hub, tmp_path):
    path = _bundle(tmp_path / "m.safetensors", {"mll.family": "torch-safetensors",
                                                "mll.config": "{not json"})
    with pytest.raises(InvalidParameterError, match=r"m.safetensors: header entry mll.config is "
                                                    r"not valid JSON"):
        hub.add(path, classes=CLASSES)
    assert _nothing_stored(hub)


@contract("model files", "mll.config that is a JSON list, or with an architecture name that is a "
          "number", "error saying what kind of value the entry needs")
def test_config_wrong_kinds(hub, tmp_path):
    listed = _bundle(tmp_path / "list.safetensors", _meta(config=[1, 2]))
    with pytest.raises(InvalidParameterError, match="mll.config must be a JSON object, got list"):
        hub.add(listed, classes=CLASSES)
    numbered = _bundle(tmp_path / "num.safetensors", _meta(config={"arch": 5, "arch_config": {}}))
    with pytest.raises(InvalidParameterError, match="architecture must be named by a string"):
        hub.add(numbered, classes=CLASSES)
    assert _nothing_stored(hub)


@contract("model files", "arch_config values of the wrong type (n_classes 'three', true, -1, "
          "a text mean)", "error naming the parameter and what it takes")
@pytest.mark.parametrize("bad, message", [({"n_classes": "three"}, "'n_classes' must be a whole"),
                                          ({"n_classes": True}, "'n_classes' must be a whole"),
                                          ({"n_classes": 3, "width": -1}, "'width' must be a whole"),
                                          ({"n_classes": 3, "mean": "x"}, "'mean' must be a list")])
def test_arch_config_types(hub, tmp_path, bad, message):
    path = _bundle(tmp_path / "m.safetensors", _meta(config={"arch": "small-cnn",
                                                             "arch_config": bad}))
    with pytest.raises(InvalidParameterError, match=message):
        hub.add(path, classes=CLASSES)
    assert _nothing_stored(hub)


@contract("model files", "mll.classes given as a string ('abc') instead of a list",
          "error: the entry must be a JSON list (it was counted as 3 classes before)")
def test_classes_as_string(hub, tmp_path):
    path = _bundle(tmp_path / "m.safetensors", _meta(**{"mll.classes": json.dumps("abc")}))
    with pytest.raises(InvalidParameterError, match="mll.classes must be a JSON list, got str"):
        hub.add(path)
    assert _nothing_stored(hub)


@contract("model files", "a width that would allocate 36 GB (small-cnn width 100000)",
          "parameters counted without allocating; refused above MLL_MAX_MODEL_PARAMS")
def test_huge_architecture_refused_before_allocation(hub, tmp_path):
    config = {"arch": "small-cnn", "arch_config": {"n_classes": 3, "width": 100_000}}
    path = _bundle(tmp_path / "wide.safetensors", _meta(config=config))
    start = time.perf_counter()
    with pytest.raises(LimitExceededError, match=r"parameter count is 180,0.*MLL_MAX_MODEL_PARAMS"):
        hub.add(path, classes=CLASSES)
    assert time.perf_counter() - start < 10  # building it would take minutes, or fail for memory
    assert _nothing_stored(hub)


@contract("model files", "an architecture input side of 8000 pixels",
          "refused above MLL_MAX_INPUT_SIDE")
def test_huge_input_side(hub, tmp_path):
    config = {"arch": "small-cnn", "arch_config": {"n_classes": 3, "width": 4, "size": 8000}}
    path = _bundle(tmp_path / "big.safetensors", _meta(config=config))
    with pytest.raises(LimitExceededError, match="input side is 8,000.*MLL_MAX_INPUT_SIDE"):
        hub.add(path, classes=CLASSES)


@contract("model files", "float64 or bfloat16 weights for a float32 architecture",
          "cast to float32 with a warning saying so; the model is added")
@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_other_float_widths_are_cast_with_a_warning(hub, tmp_path, dtype):
    import torch

    path = _bundle(tmp_path / "m.safetensors", _meta(), _state(getattr(torch, dtype)))
    with pytest.warns(MLLWarning, match=f"weights stored as {dtype} were cast to float32"):
        info = hub.add(path, classes=CLASSES)
    assert info.n_params > 0 and len(info.classes) == 3
    probs = hub.load(info.id).predict_proba([np.zeros((28, 28), np.uint8)])
    assert probs.dtype == np.float32 and np.isclose(probs.sum(), 1.0)


@contract("model files", "int8 or bool weights for float parameters",
          "refused: the weight is named and float32 asked for")
@pytest.mark.parametrize("dtype", ["int8", "bool"])
def test_integer_weights_refused(hub, tmp_path, dtype):
    import torch

    state = {k: v.to(getattr(torch, dtype)) for k, v in _state().items()}
    path = _bundle(tmp_path / "m.safetensors", _meta(), state)
    with pytest.raises(InvalidParameterError, match=rf"stored as {dtype} but the architecture "
                                                    r"holds float32"):
        hub.add(path, classes=CLASSES)
    assert _nothing_stored(hub)


def _raw_safetensors(path, header_bytes: bytes, claimed: int | None = None, tail: bytes = b""):
    n = len(header_bytes) if claimed is None else claimed
    path.write_bytes(n.to_bytes(8, "little") + header_bytes + tail)
    return path


@contract("model files", "a safetensors header length larger than the file, or of 2^63 bytes",
          "refused before reading the header")
@pytest.mark.parametrize("claimed", [10_000, 2**63])
def test_header_length_beyond_the_file(hub, tmp_path, claimed):
    path = _raw_safetensors(tmp_path / "m.safetensors", b'{"__metadata__": {}}', claimed)
    with pytest.raises(InvalidParameterError, match="its header claims"):
        hub.add(path, family="torch-safetensors", classes=CLASSES)


@contract("model files", "a safetensors header that is not JSON, a JSON list, or has non-text "
          "metadata", "error: not a valid safetensors file, with the reason")
@pytest.mark.parametrize("header, reason", [(b"\xff\xfe garbage", "header is not JSON"),
                                            (b"[1, 2, 3]", "header is a JSON list"),
                                            (b'{"__metadata__": {"mll.config": 5}}',
                                             "__metadata__ must map names to strings")])
def test_header_garbage(hub, tmp_path, header, reason):
    path = _raw_safetensors(tmp_path / "m.safetensors", header)
    with pytest.raises(InvalidParameterError, match=reason):
        hub.add(path, family="torch-safetensors", classes=CLASSES)


@contract("model files", "a model file larger than MLL_MAX_MODEL_BYTES",
          "refused with the limit to raise")
def test_model_bytes_limit(hub, tmp_path, monkeypatch):
    path = _bundle(tmp_path / "m.safetensors", _meta())
    monkeypatch.setenv("MLL_MAX_MODEL_BYTES", "1000")
    with pytest.raises(LimitExceededError, match="MLL_MAX_MODEL_BYTES"):
        hub.add(path, classes=CLASSES)


@contract("model files", "a saved directory whose config.json is not JSON, a list, or has "
          "'classes' as a string", "error naming config.json and what is wrong")
@pytest.mark.parametrize("text, message", [("{arch: small-cnn", "is not valid JSON"),
                                           ("[1]", "must hold a JSON object"),
                                           (json.dumps({**CNN, "classes": "abc"}),
                                            "'classes' must be a list of class names")])
def test_directory_config(hub, tmp_path, text, message):
    from safetensors.torch import save_file

    directory = tmp_path / "cnn"
    directory.mkdir()
    save_file(_state(), str(directory / "model.safetensors"))
    (directory / "config.json").write_text(text)
    with pytest.raises(InvalidParameterError, match=message):
        hub.add(directory, family="torch-safetensors")
    if not message.startswith("'classes'"):  # the family is guessed from the same config.json
        with pytest.raises(InvalidParameterError, match=message):
            hub.add(directory)
    assert _nothing_stored(hub)


@contract("model files", "a saved directory whose config.json (or a Hugging Face shard index) is "
          "larger than MLL_MAX_METADATA_BYTES", "refused from its size, before it is read")
@pytest.mark.parametrize("name", ["config.json", "model.safetensors.index.json"])
def test_directory_config_size(hub, tmp_path, monkeypatch, name):
    directory = tmp_path / "clip"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "clip"}))
    (directory / "tokenizer.json").write_text("{}")
    (directory / name).write_text(json.dumps({"model_type": "clip", "pad": "x" * 5000}))
    monkeypatch.setenv("MLL_MAX_METADATA_BYTES", "4096")
    with pytest.raises(LimitExceededError, match=f"{name} size in bytes.*MLL_MAX_METADATA_BYTES"):
        hub.add(directory, family="hf-clip")
    assert _nothing_stored(hub)


@contract("model files", "a family option of the wrong type (conse -o top=ten)",
          "error naming the option and the kind of value it takes")
def test_family_option_kind(hub):
    with pytest.raises(InvalidParameterError, match="option 'top' must be a whole number"):
        hub.add("efficientnet-lite0", family="conse", options={"top": "ten"})


@contract("command line", "-o arch_config=notjson, and -o 'arch_config={n_classes: 3}'",
          "one 'Error:' line saying arch_config takes a JSON object / the JSON is invalid")
def test_cli_arch_config_not_json(tmp_path, capsys):
    path = _bundle(tmp_path / "w.safetensors", {})  # weights only: the options name the arch
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    base = ["hub", "add", str(path), "--family", "torch-safetensors", "--hub", str(hub_dir),
            "--classes", str(_classes_file(tmp_path))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(base + ["-o", "arch=small-cnn", "-o", "arch_config=notjson"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "arch_config must be a JSON object" in err[0]
        assert main(base + ["-o", "arch=small-cnn", "-o", "arch_config={n_classes: 3}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is not valid JSON" in err[0] and err[0].startswith("Error: ")


def _classes_file(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("\n".join(CLASSES) + "\n")
    return path


@contract("model files", "an input spec with a NaN mean, a text mean or a missing key",
          "error saying what an input spec holds")
@pytest.mark.parametrize("spec, message", [
    ({"size": 28, "channels": 1, "mean": [float("nan")], "std": [1.0]}, "must be finite"),
    ({"size": 28, "channels": 1, "mean": "ab", "std": [1.0]}, "lists of numbers"),
    ({"size": 28}, "input spec needs size, channels")])
def test_input_spec_values(spec, message):
    from mll.hub.spec import InputSpec

    with pytest.raises(InvalidParameterError, match=message):
        InputSpec.from_dict(spec)
