"""A seeded fuzz pass over the readers of untrusted files (fixed budget, derandomised).

Each reader takes arbitrary bytes and must either return a well-formed result or raise an
:class:`~mll.errors.MLLError` (a one-line user error): any other exception is a crash a crafted
file could trigger. Inputs are drawn both blind and as mutations of a valid file, so the fuzzer
gets past the first format check.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mll.classfile import decode, parse_classes
from mll.errors import MLLError
from mll.hub.adapters._bundle import read_header
from mll.images import load_image_file
from mll.reuse.predictor import load_predictor

FUZZ = settings(max_examples=int(__import__("os").environ.get("MLL_FUZZ_EXAMPLES", 150)), derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12)


def _mutated(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    """``data`` with each (position, value) byte replaced; positions wrap around."""
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf)


def _read_each(tmp_path, suffix: str, inputs, reader) -> list:
    """``reader`` on each input written to a file: the results of those it accepted.

    A refusal must be an :class:`MLLError`; any other exception fails the test.
    """
    accepted = []
    for i, data in enumerate(inputs):
        path = tmp_path / f"{i}{suffix}"
        path.write_bytes(data)
        try:
            accepted.append(reader(path))
        except MLLError:
            pass
    return accepted


EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8)


@pytest.mark.contract("fuzz", "random bytes as a class file (150 seeded cases)",
                      "class names, or one clear error")
@FUZZ
@given(raw=st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_class_file_parser(raw):
    try:
        rows = parse_classes(decode(raw, "fuzz.txt"), "fuzz.txt")
    except MLLError:
        return
    assert rows and all(name and name == name.strip() and "\n" not in name for name, _ in rows)
    assert len({name for name, _ in rows}) == len(rows)


def _safetensors(header: object, body: bytes = b"") -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + body


@pytest.mark.contract("fuzz", "random and mutated safetensors headers (300 seeded cases)",
                      "the header as a dict, or one clear error")
@FUZZ
@given(blind=st.binary(max_size=200), header=JSON, edits=EDITS)
def test_safetensors_header_reader(tmp_path, blind, header, edits):
    valid = _safetensors({"__metadata__": {"mll.family": "x"},
                          "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)
    inputs = (blind, _safetensors(header), _mutated(valid, edits))
    for result in _read_each(tmp_path, ".safetensors", inputs, read_header):
        assert isinstance(result, dict)


def _predictor_zip(manifest: object, arrays: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        if arrays is None:
            npz = io.BytesIO()
            np.savez(npz, **{"0.prototypes": np.zeros((2, 4), np.float32)})
            arrays = npz.getvalue()
        zf.writestr("arrays.npz", arrays)
    return buf.getvalue()


VALID_MANIFEST = {"format": "mll-predictor/1", "classes": ["a", "b"], "rule": "gated",
                  "components": [{"kind": "proto", "source": "efficientnet-lite0", "weight": 1.0,
                                  "role": "general", "classes": [0, 1], "scale": 30.0}],
                  "meta": {"models": {}}}


@pytest.mark.contract("fuzz", "random and mutated predictor manifests and zips (450 cases)",
                      "a predictor, or one clear error; nothing written outside its temp dir")
@FUZZ
@given(manifest=JSON, key=st.sampled_from(sorted(VALID_MANIFEST)), value=JSON, edits=EDITS)
def test_predictor_manifest(tmp_path, manifest, key, value, edits):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    changed = dict(VALID_MANIFEST, **{key: value})
    for i, data in enumerate((_predictor_zip(manifest), _predictor_zip(changed),
                              _mutated(_predictor_zip(VALID_MANIFEST), edits))):
        path = tmp_path / f"{i}.zip"
        path.write_bytes(data)
        try:
            load_predictor(path, workdir=work)
        except MLLError:
            pass
        assert list(work.iterdir()) == []  # the unpack directory never outlives the call
        assert {p.name for p in tmp_path.iterdir()} <= {"work", "0.zip", "1.zip", "2.zip"}


def _png(mode: str, size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(0)
    if mode == "I;16":
        arr = rng.integers(0, 65535, size[::-1], dtype=np.uint16)
        img = Image.fromarray(arr)
    else:
        img = Image.fromarray(rng.integers(0, 255, (*size[::-1], len(mode)), dtype=np.uint8)
                              .squeeze(), mode)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


@pytest.mark.contract("fuzz", "random and mutated PNG, JPEG and GIF files (300 seeded cases)",
                      "a uint8 HxW or HxWx3 array, or one clear error")
@FUZZ
@given(blind=st.binary(max_size=300), fmt=st.sampled_from(["PNG", "JPEG", "GIF", "PNG16"]),
       edits=EDITS)
def test_image_loading(tmp_path, blind, fmt, edits):
    if fmt == "PNG16":
        valid = _png("I;16", (9, 7))
    else:
        out = io.BytesIO()
        Image.new("RGB", (9, 7), (200, 10, 30)).save(out, format=fmt)
        valid = out.getvalue()
    for img in _read_each(tmp_path, ".img", (blind, _mutated(valid, edits)), load_image_file):
        assert img.dtype == np.uint8 and (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3))
