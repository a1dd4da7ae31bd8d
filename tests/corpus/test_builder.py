"""Building a corpus from (synthetic) sources: roles, deduplication, caching, atomic publish."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from mll.corpus import Corpus, build
from mll.corpus.builder import CorpusLayout, writer_lock
from mll.corpus.store import encode, image_id
from mll.errors import MLLError, UnknownNameError


def test_build_records_and_pixels(hub, test_config, synth):
    report = build(hub, test_config)
    assert report.changed and report.units == 6 and report.units_rendered == 6
    corpus = Corpus.open(hub)
    assert corpus.version == report.version
    assert {r.source for r in corpus.records()} == {"test-a", "test-b", "test-c"}
    sample = corpus.records(role="sample")
    assert [r.orig_id for r in sample] == ["img7", "img8", "img9"]
    assert corpus.records(role="eval", wnids=[synth.beagle])[0].orig_id == "img5"
    ids = [sample[2].image_id, sample[0].image_id]
    images = corpus.load(ids)  # in the order asked
    np.testing.assert_array_equal(images[0], synth.image(9, 80))
    np.testing.assert_array_equal(images[1], synth.image(7, 80))
    assert all(image_id(img) == i for img, i in zip(images, ids, strict=True))
    with pytest.raises(UnknownNameError):
        corpus.load(["0" * 64])
    with pytest.raises(UnknownNameError, match="role"):
        corpus.records(role="training")
    with pytest.raises(UnknownNameError, match="did you mean"):
        corpus.records(source="test-x")


def test_duplicate_across_sources_keeps_the_strictest_role(hub, test_config, synth):
    build(hub, test_config)
    corpus = Corpus.open(hub)
    dup = image_id(synth.image(3, 16))
    records = [r for r in corpus.records() if r.image_id == dup]
    assert [(r.source, r.role) for r in records] == [("test-b", "eval")]
    ids = [r.image_id for r in corpus.records()]
    assert len(ids) == len(set(ids))  # each image once, so roles are disjoint by content
    roles = {role: {r.image_id for r in corpus.records(role=role)}
             for role in ("train", "sample", "eval")}
    assert not (roles["train"] & roles["eval"]) and not (roles["sample"] & roles["eval"])
    assert corpus.meta["duplicates"] == [{"dropped_source": "test-a", "dropped_role": "train",
                                          "kept_source": "test-b", "kept_role": "eval",
                                          "count": 1}]


def test_identical_pixels_are_stored_once(hub, test_config, synth):
    build(hub, test_config)
    packs = CorpusLayout.of(hub).packs
    stored = sum(p.stat().st_size for p in packs.glob("*.pack"))
    distinct = {3, 1, 2, 4, 5, 6}
    assert stored == len(distinct) * 16 * 16 + sum(len(encode(synth.image(s, 80))[1])
                                                   for s in (7, 8, 9))


def test_second_build_renders_nothing_and_changes_nothing(hub, test_config, synth):
    first = build(hub, test_config)
    current = CorpusLayout.of(hub).current
    before = (current.read_bytes(), current.stat().st_mtime_ns)
    second = build(hub, test_config)
    assert (second.units_rendered, second.changed, second.version) == (0, False, first.version)
    assert (current.read_bytes(), current.stat().st_mtime_ns) == before
    assert synth.a.renders == 2  # only during the first build


def test_changed_config_renders_only_what_changed(hub, test_config, synth):
    build(hub, test_config)
    synth.c.renders = 0
    report = build(hub, replace(test_config, seed=1))  # the synthetic sources ignore the seed
    assert report.units_rendered == 0 and report.changed  # same records, new config recorded
    synth.c.seeds.append(10)
    try:
        report = build(hub, test_config)
    finally:
        synth.c.seeds.pop()
    assert report.units_rendered == 1 and synth.c.renders == 1


def test_interrupted_build_keeps_the_old_corpus_and_resumes(hub, test_config, synth):
    old = build(hub, replace(test_config, sources=("test-a",)))
    synth.c.fail_on.add(9)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build(hub, test_config)
    corpus = Corpus.open(hub)  # still the complete old corpus
    assert corpus.version == old.version and corpus.sources == ("test-a",)
    synth.c.fail_on.clear()
    report = build(hub, test_config)
    assert report.units_rendered == 1  # the unit that crashed; the others were kept
    assert set(Corpus.open(hub).sources) == {"test-a", "test-b", "test-c"}


def test_a_second_writer_is_refused(hub, test_config):
    with writer_lock(CorpusLayout.of(hub)), pytest.raises(MLLError, match="another"):
        build(hub, test_config)


def test_samples_of_a_node_and_its_descendants(hub, test_config, synth):
    build(hub, test_config)
    corpus = Corpus.open(hub)
    own = corpus.samples(synth.dog)
    assert [r.orig_id for r in own] == ["img7"]
    below = corpus.samples(synth.dog, descendants=True)
    assert [r.orig_id for r in below] == ["img7", "img8"]  # img8 is a beagle
    assert {r.role for r in below} == {"sample"}


def test_open_without_corpus_says_how_to_build(tmp_path):
    with pytest.raises(MLLError, match="mll data build"):
        Corpus.open(tmp_path)


def test_manifest_records_config_and_counts(hub, test_config):
    build(hub, test_config)
    meta = json.loads(CorpusLayout.of(hub).current.read_text())
    assert meta["config"]["sources"] == list(test_config.sources)
    assert meta["roles"] == {"train": 3, "sample": 3, "eval": 3}
    assert (CorpusLayout.of(hub).root / meta["manifest"]).is_file()
