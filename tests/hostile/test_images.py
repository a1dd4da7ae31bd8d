"""Images from careless or hostile users: decompression bombs, deep PNGs, broken files, outputs.

Every image is written here, byte by byte where Pillow cannot produce it (a PNG that declares
30000x30000 pixels in 3 KB, a 16-bit RGB PNG).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mll.cli import main
from mll.errors import InvalidParameterError, LimitExceededError
from mll.images import load_image_file
from mll.reuse.solve import check_output_paths, read_images

contract = pytest.mark.contract


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(path: Path, width: int, height: int, bit_depth: int, colour_type: int,
         rows: list[bytes]) -> Path:
    """A PNG from raw scanlines (filter byte 0 prepended here); ``rows`` may cover only the top."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(b"\x00" + row) for row in rows) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
                     + _chunk(b"IEND", b""))
    return path


def _bomb(path: Path, side: int) -> Path:
    """A gray PNG declaring ``side`` x ``side`` pixels; only a few zero rows are stored."""
    return _png(path, side, side, 8, 0, [bytes(side)] * 4)


def _png16(path: Path, samples: np.ndarray) -> Path:
    """A real 16-bit PNG (gray, gray+alpha, RGB or RGBA by the last axis) of ``samples``."""
    samples = np.asarray(samples, dtype=">u2")
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = [samples[y].tobytes() for y in range(samples.shape[0])]
    return _png(path, samples.shape[1], samples.shape[0], 16, colour_type, rows)


def _gray(path: Path, value: int = 128, side: int = 16) -> Path:
    Image.fromarray(np.full((side, side), value, dtype=np.uint8)).save(path)
    return path


@contract("images", "a 3 KB PNG declaring 30000x30000 pixels",
          "refused before decoding with a one-line error; no memory is spent on it")
def test_huge_declared_size_is_refused_before_decoding(tmp_path):
    path = _bomb(tmp_path / "bomb.png", 30000)
    assert path.stat().st_size < 10_000
    with pytest.raises(LimitExceededError, match="refused before decoding") as err:
        load_image_file(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@contract("images", "a PNG of 13000x13000 pixels (8.5 GB to decode), under Pillow's own guard",
          "refused by MLL_MAX_IMAGE_PIXELS (40 MP by default) before decoding")
def test_pixel_limit_is_checked_from_the_header(tmp_path):
    path = _bomb(tmp_path / "wide.png", 13000)
    with pytest.raises(LimitExceededError, match=r"13000x13000 image.*169,000,000.*"
                                                 r"MLL_MAX_IMAGE_PIXELS"):
        load_image_file(path)


@contract("images", "an image above an operator-lowered MLL_MAX_IMAGE_PIXELS",
          "refused; raising the variable lets the same file through")
def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = _gray(tmp_path / "small.png", side=20)
    monkeypatch.setenv("MLL_MAX_IMAGE_PIXELS", "399")
    with pytest.raises(LimitExceededError, match="400, above the limit of 399"):
        load_image_file(path)
    monkeypatch.setenv("MLL_MAX_IMAGE_PIXELS", "400")
    assert load_image_file(path).shape == (20, 20)


@contract("images", "an image file larger than MLL_MAX_IMAGE_BYTES",
          "refused from its size on disk before it is opened")
def test_file_size_limit(tmp_path, monkeypatch):
    path = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(path)
    monkeypatch.setenv("MLL_MAX_IMAGE_BYTES", str(path.stat().st_size - 1))
    with pytest.raises(LimitExceededError, match="file size in bytes.*MLL_MAX_IMAGE_BYTES"):
        load_image_file(path)


@contract("images", "a 16-bit grayscale PNG",
          "scaled to 8 bit by the 16-bit range (was clipped to white)")
def test_16_bit_gray_png_is_scaled_not_clipped(tmp_path):
    samples = np.array([[0, 256, 16000, 32768], [40000, 50000, 65280, 65535]], dtype=np.uint16)
    path = _png16(tmp_path / "deep.png", samples)
    assert Image.open(path).mode == "I;16"  # really the mode that used to be clipped
    img = load_image_file(path)
    assert img.dtype == np.uint8 and img.shape == (2, 4)
    np.testing.assert_allclose(img.astype(int), (samples.astype(int) >> 8), atol=1)
    assert img.min() == 0 and img.max() == 255 and len(np.unique(img)) == 8


@contract("images", "a 16-bit RGB PNG (48 bits per pixel)", "each channel scaled to 8 bit")
def test_16_bit_rgb_png(tmp_path):
    ramp = np.linspace(0, 65535, 32).astype(np.uint16)
    samples = np.stack(np.broadcast_arrays(ramp[None, :], 65535 - ramp[None, :],
                                           np.full((1, 32), 32768, dtype=np.uint16)), axis=2)
    img = load_image_file(_png16(tmp_path / "rgb48.png", np.repeat(samples, 4, axis=0)))
    assert img.shape == (4, 32, 3) and img.dtype == np.uint8
    np.testing.assert_allclose(img[0].astype(int), samples[0].astype(int) >> 8, atol=1)


@contract("images", "a 32-bit integer or float grayscale image (TIFF)",
          "scaled by its range: floats in [0, 1] as fractions of white, integers by 8/16/32 bits")
def test_wide_integer_and_float_images(tmp_path):
    floats = np.array([[0.0, 0.25, 0.5, 1.0]], dtype=np.float32)
    Image.fromarray(floats).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(load_image_file(tmp_path / "f.tif"), [[0, 64, 128, 255]])
    ints = np.array([[0, 1000, 30000, 65535]], dtype=np.int32)
    Image.fromarray(ints).save(tmp_path / "i.tif")
    np.testing.assert_allclose(load_image_file(tmp_path / "i.tif").astype(int),
                               ints.astype(int) >> 8, atol=1)


@contract("images", "a truncated JPEG, random bytes named .png, a directory named x.jpg",
          "one-line 'not a readable image' error naming the file")
def test_broken_files_are_one_line_errors(tmp_path):
    Image.fromarray(np.full((64, 64, 3), 90, dtype=np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(1).bytes(500))
    (tmp_path / "dir.jpg").mkdir()
    for name in ("cut.jpg", "noise.png", "dir.jpg"):
        with pytest.raises(InvalidParameterError, match="not a readable image") as err:
            load_image_file(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)


@contract("images", "a folder for solve with a decompression bomb and a broken file among "
                    "good images", "each bad file skipped with its reason; the rest are predicted")
def test_solve_reads_the_good_images_and_skips_the_rest(tmp_path):
    good = [_gray(tmp_path / f"good{i}.png", 40 * i) for i in range(3)]
    bomb = _bomb(tmp_path / "bomb.png", 30000)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    files = sorted([*good, bomb, tmp_path / "broken.png"])
    images, kept, skipped = read_images(files)
    assert kept == sorted(good) and len(images) == 3
    reasons = {Path(s["path"]).name: s["reason"] for s in skipped}
    assert set(reasons) == {"bomb.png", "broken.png"}
    assert "decompression bomb" in reasons["bomb.png"] or "limit" in reasons["bomb.png"]
    assert reasons["broken.png"].startswith("not a readable image")
    assert not reasons["bomb.png"].startswith(str(tmp_path))  # the path is its own field


@contract("command line", "mll solve --out /proc/x.csv (or a directory, or a missing folder)",
          "one-line error before any selection or prediction work; nothing is created")
def test_unwritable_outputs_fail_first(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    _gray(images / "a.png")
    hub = tmp_path / "hub"
    cases = [("--out", "/proc/x.csv", "cannot create files in /proc"),
             ("--report", str(tmp_path), "is a directory"),
             ("--save", str(tmp_path / "missing" / "p.zip"), "does not exist; create it first")]
    for option, path, message in cases:
        code = main(["solve", "--classes", "cat,dog", "--images", str(images), option, path,
                     "--hub", str(hub)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert err[0].startswith("Error: ") and option in err[0] and message in err[0]
    assert not hub.exists() and not (tmp_path / "missing").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]  # no probe files left


@contract("command line", "the same file given to --out and --report",
          "one-line error: each output needs its own file")
def test_outputs_must_differ(tmp_path):
    with pytest.raises(InvalidParameterError, match="both name"):
        check_output_paths({"--out": tmp_path / "x", "--report": tmp_path / "x"})
    check_output_paths({"--out": tmp_path / "x.csv", "--report": None, "--save": ""})
    assert list(tmp_path.iterdir()) == []


@contract("command line", "--budget 0ms, --budget 0, --budget 2.5",
          "one-line error: a budget must allow at least one model (a count is a whole number)")
@pytest.mark.parametrize("budget", ["0ms", "0", "0.0", "2.5"])
def test_non_positive_budget_is_refused(tmp_path, capsys, budget):
    code = main(["select", "--classes", "cat,dog", "--budget", budget,
                 "--hub", str(tmp_path / "hub")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"Error: --budget '{budget}'")
    assert not (tmp_path / "hub").exists()


@contract("images", "mll solve over a folder holding a 30000x30000 PNG and a 16-bit PNG",
          "the bomb is skipped (one stderr line, a count, listed under 'skipped' in --json); "
          "every other image is predicted")
@pytest.mark.slow
def test_solve_cli_skips_a_bomb_and_predicts_the_rest(starter_hub, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        _gray(images / f"gray{i}.png", 60 * i, side=28)
    _bomb(images / "bomb.png", 30000)
    _png16(images / "deep.png", np.full((28, 28), 40000, dtype=np.uint16))
    code = main(["solve", "--hub", str(starter_hub), "--classes", "sandal,sneaker,ankle boot",
                 "--images", str(images), "--out", str(tmp_path / "p.csv"), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert doc["images"] == 4
    assert [Path(s["path"]).name for s in doc["skipped"]] == ["bomb.png"]
    err = out.err.strip().splitlines()
    assert any(line.startswith(f"skipped {images / 'bomb.png'}: ") for line in err)
    assert "1 file(s) skipped, 4 predicted" in err
    assert (tmp_path / "p.csv").read_text().count("\n") == 5
