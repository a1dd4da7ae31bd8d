"""The corpus built from the real installed sources, in quick mode on a seeded subset of nodes."""

from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np
import pytest

from mll.cli import main
from mll.config import HubPaths
from mll.corpus import Corpus, CorpusConfig, build
from mll.corpus.store import image_id

CONFIG = CorpusConfig.for_quick(max_concepts=40, workers=2)
STYLE_ROLES = {"emoji/noto": "train", "emoji/noto-font": "train", "emoji/twemoji": "train",
               "emoji/openmoji": "sample", "emoji/fluent-emoji": "eval",
               "emoji/fluent-emoji-flat": "eval",
               "drawing/tuxpaint": "sample", "photo/skimage": "sample",
               "photo/imagenet": "eval", "photo32/cifar10": "eval", "photo32/cifar100": "eval"}


@pytest.fixture(scope="session")
def quick_hub(tmp_path_factory, real_hub, graph):
    root = tmp_path_factory.mktemp("quick") / "hub"
    root.mkdir()
    HubPaths(root).graph.symlink_to(HubPaths(real_hub).graph, target_is_directory=True)
    report = build(root, CONFIG)
    assert report.changed and report.units_rendered == report.units
    return root


@pytest.fixture(scope="session")
def corpus(quick_hub):
    return Corpus.open(quick_hub)


def test_every_source_contributes(corpus):
    assert set(corpus.sources) == {
        "animal-mnist", "fashion-mnist", "foolbox", "iconify-fluent-emoji",
        "iconify-fluent-emoji-flat", "iconify-noto", "iconify-openmoji", "iconify-twemoji",
        "mnist", "noto-font", "skimage", "tuxpaint"}


def test_roles_are_disjoint_by_content(corpus):
    records = corpus.records()
    ids = [r.image_id for r in records]
    assert len(ids) == len(set(ids))
    by_source: dict[str, list] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    rng = np.random.default_rng(0)
    picked = [recs[i] for recs in by_source.values()
              for i in rng.choice(len(recs), min(15, len(recs)), replace=False)]
    images = corpus.load([r.image_id for r in picked])
    assert [image_id(img) for img in images] == [r.image_id for r in picked]
    for dup in corpus.meta["duplicates"]:  # a duplicate never leaves a stricter role
        order = ["eval", "sample", "train"]
        assert order.index(dup["kept_role"]) <= order.index(dup["dropped_role"])


def test_roles_follow_the_documented_policy(corpus):
    for r in corpus.records():
        if r.style in STYLE_ROLES:
            assert r.role == STYLE_ROLES[r.style], r
    fashion = corpus.records(source="fashion-mnist")
    assert {r.role for r in fashion if r.orig_id.startswith("test/")} == {"eval"}
    assert {r.role for r in fashion if r.orig_id.startswith("train/")} == {"train", "sample"}
    for source in ("fashion-mnist", "mnist", "animal-mnist"):
        per_class = Counter(r.wnid for r in corpus.records(source=source, role="sample"))
        assert len(per_class) == 10 and set(per_class.values()) <= {CONFIG.gray_sample_per_class,
                                                                    CONFIG.gray_sample_per_class - 1,
                                                                    CONFIG.gray_sample_per_class - 2}
    shapes = {img.shape for img in corpus.load([r.image_id for r in fashion[:5]])}
    assert shapes == {(28, 28)}


def test_photos_are_split_by_concept_as_recorded(corpus):
    """Tux Paint photos of one concept are all sample or all eval, as the manifest records."""
    split = corpus.meta["splits"]["tuxpaint"]["photo"]
    assert split["sample"] and split["eval"] and not set(split["sample"]) & set(split["eval"])
    photos = [r for r in corpus.records(source="tuxpaint") if r.style == "photo/tuxpaint"]
    roles = {r.wnid: set() for r in photos}
    for r in photos:
        roles[r.wnid].add(r.role)
    assert {w for w, rs in roles.items() if rs == {"sample"}} == set(split["sample"]) & set(roles)
    assert {w for w, rs in roles.items() if rs == {"eval"}} == set(split["eval"]) & set(roles)
    imagenet = {r.wnid for r in corpus.records(source="foolbox") if r.style == "photo/imagenet"}
    assert not imagenet & set(split["sample"])


def test_sample_images_per_node_are_capped(corpus):
    counts = Counter((r.source, r.wnid) for r in corpus.records(role="sample")
                     if not r.style.startswith("gray28"))
    assert max(counts.values()) <= CONFIG.sample_cap
    emoji = corpus.records(source="iconify-openmoji")
    assert {img.shape for img in corpus.load([r.image_id for r in emoji[:4]])} == {(224, 224, 3)}


def test_second_build_is_cached(quick_hub, corpus):
    t0 = time.perf_counter()
    report = build(quick_hub, CONFIG)
    assert report.units_rendered == 0 and not report.changed
    assert report.version == corpus.version
    assert time.perf_counter() - t0 < 20


def test_loading_a_role_is_fast(corpus):
    ids = [r.image_id for r in corpus.records(role="sample")]
    t0 = time.perf_counter()
    images = corpus.load(ids)
    rate = len(images) / (time.perf_counter() - t0)
    assert len(images) == len(ids) and rate > 300


def test_cli_reports(quick_hub, capsys, tmp_path):
    assert main(["data", "list", "--hub", str(quick_hub), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    row = next(s for s in listing["sources"] if s["source"] == "iconify-openmoji")
    assert row["role"] == "sample" and row["license"] == "CC-BY-SA-4.0" and row["nodes"] > 0
    assert main(["data", "nodes", "--hub", str(quick_hub), "--json"]) == 0
    nodes = json.loads(capsys.readouterr().out)
    assert nodes["nodes_with_samples"] > 40
    assert {"min", "median", "max"} <= set(nodes["images_per_node"])
    out = tmp_path / "dog.png"
    assert main(["data", "show", "n02084071", "--hub", str(quick_hub), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert main(["data", "show", "n00000000", "--hub", str(quick_hub)]) == 2
