"""Matching accuracy on real class names from public benchmarks, matched as whole tasks."""

from __future__ import annotations

import pytest

# class name -> acceptable senses (the visual meaning a labeller would choose), grouped by task so
# that each name is matched with its real neighbours as context.
TABLE: dict[str, dict[str, set[str]]] = {
    "fashion-mnist": {
        "T-shirt/top": {"jersey.n.03"}, "Trouser": {"trouser.n.01"},
        "Pullover": {"pullover.n.01", "sweater.n.01"}, "Dress": {"dress.n.01"},
        "Coat": {"coat.n.01"}, "Sandal": {"sandal.n.01"}, "Shirt": {"shirt.n.01"},
        "Sneaker": {"gym_shoe.n.01"}, "Bag": {"bag.n.01", "bag.n.04", "bag.n.06"},
        "Ankle boot": {"boot.n.01"},
    },
    "cifar-100 (part)": {
        "apple": {"apple.n.01"}, "aquarium_fish": {"fish.n.01"},
        "bear": {"bear.n.01"}, "beaver": {"beaver.n.07"}, "bicycle": {"bicycle.n.01"},
        "bowl": {"bowl.n.01", "bowl.n.03"}, "boy": {"male_child.n.01", "boy.n.02"},
        "castle": {"castle.n.02"}, "caterpillar": {"caterpillar.n.01"},
        "couch": {"sofa.n.01"}, "dolphin": {"dolphin.n.02"}, "keyboard": {"keyboard.n.01",
                                                                       "computer_keyboard.n.01"},
        "lawn_mower": {"lawn_mower.n.01"}, "leopard": {"leopard.n.02"},
        "lobster": {"lobster.n.02"}, "maple_tree": {"maple.n.02"}, "mouse": {"mouse.n.01"},
        "mushroom": {"mushroom.n.02", "mushroom.n.03", "mushroom.n.05"},
        "orange": {"orange.n.01"}, "palm_tree": {"palm.n.03"}, "pickup_truck": {"pickup.n.01"},
        "plate": {"plate.n.04"}, "possum": {"opossum.n.02"}, "ray": {"ray.n.07"},
        "rocket": {"rocket.n.01", "rocket.n.02"}, "seal": {"seal.n.09"},
        "shrew": {"shrew.n.02"}, "skunk": {"skunk.n.04"}, "tank": {"tank.n.01"},
        "tiger": {"tiger.n.02"}, "trout": {"trout.n.02"}, "turtle": {"turtle.n.02"},
        "whale": {"whale.n.02"}, "willow_tree": {"willow.n.01"}, "woman": {"woman.n.01"},
    },
    "oxford-pets (part)": {
        "Abyssinian": {"abyssinian.n.01"}, "Persian": {"persian_cat.n.01"},
        "Siamese": {"siamese_cat.n.01"}, "Maine Coon": {"domestic_cat.n.01", "cat.n.01"},
        "basset hound": {"basset.n.01"}, "beagle": {"beagle.n.01"}, "boxer": {"boxer.n.04"},
        "chihuahua": {"chihuahua.n.03"}, "english setter": {"english_setter.n.01"},
        "great pyrenees": {"great_pyrenees.n.01"}, "keeshond": {"keeshond.n.01"},
        "newfoundland": {"newfoundland.n.01"}, "pomeranian": {"pomeranian.n.01"},
        "pug": {"pug.n.01"}, "saint bernard": {"saint_bernard.n.01"},
        "samoyed": {"samoyed.n.03"}, "scottish terrier": {"scotch_terrier.n.01"},
        "yorkshire terrier": {"yorkshire_terrier.n.01"},
    },
    "food-101 (part)": {
        "apple_pie": {"apple_pie.n.01"}, "baby_back_ribs": {"rib.n.03", "sparerib.n.01"},
        "cheesecake": {"cheesecake.n.01"}, "chocolate_cake": {"chocolate_cake.n.01"},
        "donuts": {"doughnut.n.02"}, "french_fries": {"french_fries.n.01"},
        "hot_dog": {"hotdog.n.02", "frank.n.02"}, "ice_cream": {"ice_cream.n.01"},
        "omelette": {"omelet.n.01"}, "pancakes": {"pancake.n.01"}, "pizza": {"pizza.n.01"},
        "sushi": {"sushi.n.01"}, "tacos": {"taco.n.02"}, "waffles": {"waffle.n.01"},
    },
    "eurosat": {
        "AnnualCrop": {"crop.n.01", "crop.n.02"}, "Forest": {"forest.n.02"},
        "Highway": {"highway.n.01", "expressway.n.01"}, "Pasture": {"pasture.n.01"},
        "River": {"river.n.01"}, "SeaLake": {"lake.n.01", "sea.n.01"},
        "Residential": {"residential_district.n.01", "residence.n.01", "house.n.01"},
    },
}
# Measured top-1 accuracy of the matcher on this table when the floor was set (see closing note
# of the graph issue); the test fails if a change makes matching worse.
FLOOR = 0.86


@pytest.fixture(scope="module")
def results(matcher):
    rows = []
    for task, names in TABLE.items():
        terms = list(names)
        ranked = matcher.match(terms, top=1)
        for term, cands in zip(terms, ranked, strict=True):
            got = matcher.graph.synset_name(cands[0].wnid)
            rows.append((task, term, got, got in names[term]))
    return rows


def test_table_is_large_and_valid(graph):
    names = [n for task in TABLE.values() for n in task]
    assert len(names) >= 40
    for task in TABLE.values():
        for senses in task.values():
            for synset in senses:
                assert graph.synset_name(graph.resolve(synset)) == synset


def test_top1_matching_accuracy_floor(results):
    accuracy = sum(ok for *_, ok in results) / len(results)
    misses = [(t, g) for _, t, g, ok in results if not ok]
    print(f"top-1 matching accuracy {accuracy:.3f} on {len(results)} names; misses: {misses}")
    assert accuracy >= FLOOR, misses


def test_context_disambiguates_mouse(matcher):
    graph = matcher.graph
    device = matcher.match(["mouse", "keyboard", "monitor"], top=1)[0][0]
    rodent = matcher.match(["mouse", "rat", "hamster"], top=1)[0][0]
    assert graph.synset_name(device.wnid) == "mouse.n.04"
    assert graph.synset_name(rodent.wnid) == "mouse.n.01"


def test_separators_case_and_camelcase(matcher):
    graph = matcher.graph
    for term, expected in [("tv monitor", {"television_monitor.n.01", "monitor.n.04"}),
                           ("Hot-Dog", {"hotdog.n.02", "frank.n.02"}),
                           ("T_SHIRT", {"jersey.n.03"}), ("SeaLake", {"lake.n.01", "sea.n.01"})]:
        best = matcher.match([term], context=["pizza", "river"] if term != "tv monitor" else [],
                             top=1)[0][0]
        assert graph.synset_name(best.wnid) in expected, (term, graph.synset_name(best.wnid))


def test_digits_mean_numerals(matcher):
    graph = matcher.graph
    for names in (["zero", "one", "two", "three", "four"], ["0", "1", "2", "3", "4"]):
        got = [graph.synset_name(c[0].wnid) for c in matcher.match(names, domain="handwritten digit")]
        assert got == ["zero.n.02", "one.n.01", "two.n.01", "three.n.01", "four.n.01"]


def test_unknown_word_still_ranked_but_not_lexical(matcher):
    cands = matcher.match(["flibber"], top=3)[0]
    assert len(cands) == 3 and not any(c.lexical for c in cands)
    assert cands[0].score < 0.5


def test_empty_term_refused(matcher):
    from mll.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        matcher.match(["dog", "  "])
