"""Synthetic experts as a model family: the spec is checked, the noise is a pure function of the
model and the image, and the source's outputs go through the same labelled form a label stores."""

from __future__ import annotations

import numpy as np
import pytest

from mll.errors import InvalidParameterError, NotBuiltError
from mll.hub.adapters import families
from mll.hub.adapters.base import Expert
from mll.hub.adapters.synthetic import (
    SyntheticExpert,
    labelled_form,
    make_spec,
    noise,
    read_spec,
    spec_bytes,
    transform,
)
from mll.hub.spec import InputSpec
from mll.labels.store import CompactOutputs, Outputs, encode_outputs

IDS = [f"{i:064x}" for i in range(1, 41)]


def _spec(**over) -> dict:
    args = {"source_id": "abc123", "source_hash": "f" * 64, "source_classes": 5,
            "heads": [0, 2, 4], "seed": 7, "temperature": 1.2, "noise_sd": 0.5,
            "bias": [0.1, -0.2, 0.0]} | over
    return make_spec(**args)


class _Source(Expert):
    """A deterministic stand-in expert: probabilities from each image's mean pixel."""

    family = "test-source"

    def __init__(self, n: int) -> None:
        super().__init__([f"c{i}" for i in range(n)])
        self.input_spec = InputSpec(8, 3, (0.5,) * 3, (0.5,) * 3)

    def predict_proba(self, images, batch_size=None):
        m = np.array([float(im.mean()) for im in images])[:, None]
        logits = np.cos(m / 17.0 * np.arange(1, len(self.classes) + 1)[None, :]) * 3
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("width", [5, 64, 300])
def test_labelled_form_is_what_a_published_label_gives_back(width):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(width, 0.3), size=50).astype(np.float32)
    arrays, desc = encode_outputs(Outputs.from_dense(IDS[:1] * 50, probs, "expert"), "expert",
                                  width)
    index, indptr = arrays.get("index"), arrays.get("indptr")
    if "gaps" in arrays:  # wide experts: heads as gaps, entries counted per row
        index = arrays["gaps"]
        indptr = np.concatenate([[0], np.cumsum(arrays["counts"], dtype=np.int64)])
    stored = CompactOutputs(np.zeros(50), desc["encoding"], arrays["values"], desc["columns"],
                            index, indptr).dense(width)
    np.testing.assert_array_equal(labelled_form(probs), stored)


def test_noise_is_a_pure_function_of_seed_image_and_head():
    a = noise(7, IDS, 3)
    assert a.shape == (40, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, noise(7, IDS, 3))
    np.testing.assert_array_equal(a[5:9], noise(7, IDS[5:9], 3))  # per image, not per batch
    assert not np.allclose(a, noise(8, IDS, 3))
    big = noise(1, [f"{i:064x}" for i in range(20000)], 4)
    assert abs(big.mean()) < 0.03 and abs(big.std() - 1) < 0.03


def test_spec_round_trips_and_bad_specs_are_refused_in_one_line():
    spec = _spec()
    assert read_spec(spec_bytes(spec)) == spec
    bad = [b"not json", b"[1]", spec_bytes(spec | {"version": 9}),
           spec_bytes(spec | {"heads": [0, 9, 1]}), spec_bytes(spec | {"heads": [0, 0, 1]}),
           spec_bytes(spec | {"bias": [0.1]}), spec_bytes(spec | {"temperature": 0}),
           spec_bytes(spec | {"noise_sd": -1}), spec_bytes(spec | {"seed": "x"})]
    for data in bad:
        with pytest.raises(InvalidParameterError) as err:
            read_spec(data)
        assert "\n" not in str(err.value)


def test_the_family_is_registered_and_refuses_hub_add(tmp_path):
    assert families.get("synthetic") is SyntheticExpert
    with pytest.raises(InvalidParameterError, match="written by mll.bench.synthetic"):
        SyntheticExpert.pack(tmp_path, {}, None)


def test_runs_its_source_through_the_transformation_and_checks_the_source(tmp_path):
    path = tmp_path / "spec.json"
    path.write_bytes(spec_bytes(_spec()))
    model = SyntheticExpert.from_artifact(path, {}, ["a", "b", "c"])
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(6)]
    with pytest.raises(NotBuiltError, match="no source model bound"):
        model.predict_proba(images)
    with pytest.raises(InvalidParameterError, match="content hash"):
        model.bind(_Source(5), "0" * 64)
    with pytest.raises(InvalidParameterError, match="source has 4 heads"):
        model.bind(_Source(4), "f" * 64)
    source = _Source(5)
    model.bind(source, "f" * 64)
    from mll.corpus.store import image_id

    got = model.predict_proba(images)
    want = transform(labelled_form(source.predict_proba(images)), model.spec,
                     [image_id(im) for im in images])
    np.testing.assert_array_equal(got, want)
    assert got.shape == (6, 3) and np.allclose(got.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(model.predict_proba(images[2:4]), got[2:4])  # per image
    with pytest.raises(InvalidParameterError, match="3 classes but the spec keeps 2"):
        SyntheticExpert(["a", "b", "c"], _spec(heads=[0, 1], bias=[0, 0]))
