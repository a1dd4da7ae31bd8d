"""Uploads that need pickle, are too big, empty or corrupt are refused, and nothing is stored."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from mll.errors import InvalidParameterError, UnsafeFormatError


def _nothing_stored(hub) -> bool:
    return hub.list() == [] and hub.artifacts.digests() == []


@pytest.mark.parametrize("how", ["module.pt", "state_dict.pth", "pickle.pkl", "joblib.joblib",
                                 "disguised.safetensors", "disguised.onnx"])
def test_pickle_formats_are_refused_with_the_safe_formats_named(hub, tmp_path, classes_file,
                                                               small_cnn, how):
    path = tmp_path / how.split(".", 1)[0] / f"model.{how.split('.', 1)[1]}"
    path.parent.mkdir()
    module = small_cnn()
    if how.startswith("module"):
        torch.save(module, path)
    elif how.startswith("state_dict"):
        torch.save(module.state_dict(), path)
    elif how.startswith("joblib"):
        import joblib

        joblib.dump({"w": np.zeros(3)}, path, compress=3)
    else:
        path.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    family = "onnx" if path.suffix == ".onnx" else "torch-safetensors"
    with pytest.raises(UnsafeFormatError, match="safetensors.*ONNX") as err:
        hub.add(path, family=family, classes=classes_file)
    with pytest.raises(UnsafeFormatError):  # the same when the family is left to inference
        hub.add(path, classes=classes_file)
    assert "pickle" in str(err.value)
    assert _nothing_stored(hub)


def test_hf_directory_with_only_a_bin_checkpoint_is_refused(hub, hf_clip_dir):
    (hf_clip_dir / "model.safetensors").unlink()
    torch.save({"w": torch.zeros(2)}, hf_clip_dir / "pytorch_model.bin")
    with pytest.raises(UnsafeFormatError, match="pickle"):
        hub.add(hf_clip_dir, family="hf-clip")
    assert _nothing_stored(hub)


def test_oversized_upload_is_refused(hub, onnx_file, classes_file):
    with pytest.raises(InvalidParameterError, match="--max-size"):
        hub.add(onnx_file, classes=classes_file, max_bytes=1000)
    assert _nothing_stored(hub)


@pytest.mark.parametrize("suffix,family", [(".onnx", "onnx"),
                                           (".safetensors", "torch-safetensors")])
def test_truncated_or_garbage_files_are_refused(hub, tmp_path, onnx_file, cnn_dir, classes_file,
                                                suffix, family):
    good = onnx_file if suffix == ".onnx" else cnn_dir / "model.safetensors"
    data = good.read_bytes()
    for name, payload in (("truncated", data[: len(data) // 2]), ("garbage", b"\x01garbage" * 50)):
        bad = tmp_path / f"{name}{suffix}"
        bad.write_bytes(payload)
        with pytest.raises(InvalidParameterError, match="not a valid|cannot read"):
            hub.add(bad, family=family, classes=classes_file,
                    options={"arch": "small-cnn", "arch_config": {"n_classes": 3, "width": 4}}
                    if family == "torch-safetensors" else None)
    assert _nothing_stored(hub)


def test_empty_and_missing_files(hub, tmp_path, classes_file):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(InvalidParameterError, match="empty"):
        hub.add(empty, classes=classes_file)
    with pytest.raises(InvalidParameterError, match="does not exist"):
        hub.add(tmp_path / "nope.onnx", classes=classes_file)


def test_safetensors_whose_header_length_looks_like_a_pickle_is_accepted(tmp_path):
    """A 0x0380-byte header starts the file with 0x80 0x03, a pickle protocol-3 opening."""
    import json

    from safetensors.numpy import load_file

    from mll.hub.safety import refuse_unsafe

    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})
    path = tmp_path / "model.safetensors"
    path.write_bytes((0x0380).to_bytes(8, "little") + header.ljust(0x0380).encode()
                     + np.ones(2, np.float32).tobytes())
    assert path.read_bytes()[:2] == b"\x80\x03"
    refuse_unsafe(path)
    assert load_file(str(path))["w"].tolist() == [1.0, 1.0]
