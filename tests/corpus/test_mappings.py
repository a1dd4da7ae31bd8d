"""The committed label -> node tables: every node exists, and reviewed senses stay reviewed."""

from __future__ import annotations

import json

import pytest

from mll.corpus.mappings import load_mapping, mapping_names
from mll.corpus.sources import SOURCES
from mll.corpus.sources._paths import node_modules, python_package_dir
from mll.corpus.sources.tuxpaint import STAMPS

# (table, label) -> the visual sense chosen by review; the first WordNet sense is wrong for most
REVIEWED = {
    ("emoji", "mouse"): "mouse.n.01", ("emoji", "computer-mouse"): "mouse.n.04",
    ("emoji", "bat"): "bat.n.01", ("emoji", "cricket-game"): "cricket_bat.n.01",
    ("emoji", "turtle"): "turtle.n.02", ("emoji", "kite"): "kite.n.03",
    ("emoji", "hammer"): "hammer.n.02", ("emoji", "chicken"): "chicken.n.02",
    ("emoji", "banana"): "banana.n.02", ("emoji", "mango"): "mango.n.02",
    ("emoji", "pineapple"): "pineapple.n.02", ("emoji", "whale"): "whale.n.02",
    ("emoji", "toilet"): "toilet.n.02", ("emoji", "dolphin"): "dolphin.n.02",
    ("emoji", "seal"): "seal.n.09", ("emoji", "tiger"): "tiger.n.02",
    ("emoji", "leopard"): "leopard.n.02", ("emoji", "peacock"): "peacock.n.02",
    ("emoji", "crown"): "crown.n.04", ("emoji", "balloon"): "balloon.n.02",
    ("emoji", "mushroom"): "mushroom.n.05", ("emoji", "hot-dog"): "hotdog.n.02",
    ("emoji", "t-shirt"): "jersey.n.03", ("emoji", "glasses"): "spectacles.n.01",
    ("emoji", "black-cat"): "cat.n.01", ("emoji", "one-oclock"): "clock.n.01",
    ("tuxpaint", "seasonal/halloween/bat_left.png"): "bat.n.01",
    ("tuxpaint", "animals/birds/peacock.png"): "peacock.n.02",
    ("tuxpaint", "animals/mammals/aquatic/dolphin.png"): "dolphin.n.02",
    ("tuxpaint", "household/tools/hammer.png"): "hammer.n.02",
    ("tuxpaint", "food/fruit/banana.png"): "banana.n.02",
    ("fashion-mnist", "0"): "jersey.n.03", ("fashion-mnist", "7"): "gym_shoe.n.01",
    ("fashion-mnist", "8"): "bag.n.04", ("fashion-mnist", "9"): "boot.n.01",
    ("animal-mnist", "3"): "cow.n.01", ("mnist", "0"): "zero.n.02",
    ("foolbox", "imagenet_06_609.jpg"): "jeep.n.01", ("foolbox", "cifar10_00_3.png"): "cat.n.01",
    ("skimage", "chelsea.png"): "cat.n.01",
}


@pytest.mark.parametrize("name", mapping_names())
def test_every_node_exists_and_names_match(graph, name):
    table = load_mapping(name)
    assert table
    for label, row in table.items():
        assert row.wnid in graph, f"{name}: {label} -> {row.wnid} is not a WordNet noun"
        assert graph.synset_name(row.wnid) == row.synset, f"{name}: {label}"


@pytest.mark.parametrize("key", sorted(REVIEWED))
def test_reviewed_senses(graph, key):
    row = load_mapping(key[0])[key[1]]
    assert graph.synset_name(row.wnid) == REVIEWED[key]


def test_labels_exist_in_their_sources():
    slugs = set()
    for icon_set in ("noto", "twemoji", "openmoji", "fluent-emoji", "fluent-emoji-flat"):
        data = json.loads((node_modules() / "@iconify-json" / icon_set / "icons.json").read_text())
        slugs |= set(data["icons"]) | set(data.get("aliases", {}))
    assert set(load_mapping("emoji")) <= slugs
    assert all((STAMPS / f).is_file() for f in load_mapping("tuxpaint"))
    assert {row.extra[0] for row in load_mapping("tuxpaint").values()} == {"photo", "drawing"}
    assert all((python_package_dir("foolbox") / "data" / f).is_file()
               for f in load_mapping("foolbox"))
    assert all((python_package_dir("skimage") / "data" / f).is_file()
               for f in load_mapping("skimage"))


def test_every_mapped_source_is_registered():
    assert {"fashion-mnist", "animal-mnist", "mnist", "tuxpaint", "foolbox", "skimage",
            "noto-font", "iconify-openmoji"} <= set(SOURCES)
