"""Content addressing and the image store: ids, canonical forms, codecs, packs."""

from __future__ import annotations

import numpy as np
import pytest

from mll.corpus.records import CODEC_PNG, CODEC_RAW, ImageRecord, Location, RecordTable
from mll.corpus.store import PackReader, PackWriter, canonical, decode, encode, image_id, shape3
from mll.errors import InvalidParameterError


def test_image_id_is_sha256_of_shape_and_pixels(rng):
    img = rng.integers(0, 256, (4, 6), dtype=np.uint8)
    assert image_id(img) == image_id(img.copy())
    assert image_id(img) != image_id(img.reshape(6, 4))  # same bytes, other shape
    other = img.copy()
    other[0, 0] ^= 1
    assert image_id(img) != image_id(other)
    assert len(image_id(img)) == 64


def test_canonical_forms():
    gray = np.full((3, 3, 1), 7, np.uint8)
    assert canonical(gray).shape == (3, 3)
    rgba = np.zeros((2, 2, 4), np.uint8)  # fully transparent -> white
    assert (canonical(rgba) == 255).all()
    with pytest.raises(InvalidParameterError):
        canonical(np.zeros((2, 2), np.float32))
    with pytest.raises(InvalidParameterError):
        canonical(np.zeros((2, 2, 2), np.uint8))


@pytest.mark.parametrize("shape,codec", [((28, 28), CODEC_RAW), ((10, 12, 3), CODEC_RAW),
                                         ((100, 90), CODEC_PNG), ((100, 90, 3), CODEC_PNG)])
def test_encode_decode_roundtrip(rng, shape, codec):
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    got_codec, blob = encode(img)
    assert got_codec == codec
    np.testing.assert_array_equal(decode(got_codec, blob, shape3(img)), img)


def test_pack_appears_only_when_published(tmp_path):
    writer = PackWriter(tmp_path, "p1")
    first = writer.add(b"abc")
    second = writer.add(b"defg")
    assert not (tmp_path / "p1.pack").exists()
    writer.publish()
    reader = PackReader(tmp_path)
    assert reader.read("p1", *first) == b"abc"
    assert reader.read("p1", *second) == b"defg"
    reader.close()


def test_record_table_roundtrip_and_hash_ignores_storage(tmp_path):
    recs = [ImageRecord("ab" * 32, "s", f"o{i}", "MIT", "st", "n02084071", "train", "none")
            for i in range(3)]
    locs = [Location("pack", i * 10, 10, CODEC_RAW, (2, 5, 1)) for i in range(3)]
    table = RecordTable.build(recs, locs)
    table.save(tmp_path / "t.npz")
    again = RecordTable.load(tmp_path / "t.npz")
    assert again.records() == recs
    assert again.location(2) == locs[2]
    moved = RecordTable.build(recs, [Location("other", 0, 10, CODEC_RAW, (2, 5, 1))] * 3)
    assert moved.content_hash() == table.content_hash()
    assert table.take(np.array([1, 2])).content_hash() != table.content_hash()
    merged = RecordTable.concat([table, moved.take(np.array([0]))])
    assert merged.records() == recs + recs[:1]
