"""Style as a dimension of labels, on the toy table: counts per (model, node, style), the style
ratio used when a class lacks the target's style, and the target style from the domain words."""

from __future__ import annotations

import numpy as np

from mll.selection import Task, build_context
from mll.selection.style import StyleCounts, gap_rows, style_group


def test_style_groups_follow_the_style_head():
    assert style_group("photo/tuxpaint") == "photo"
    assert style_group("photo32/cifar10") == "photo"
    assert style_group("gray28/mnist") == "gray28"
    assert style_group("emoji/openmoji") == "emoji"


def test_counts_cover_each_models_domain(toy_table):
    counts = StyleCounts.of(toy_table)
    assert counts.groups == ["gray28", "photo"]
    assert counts.model_ids[-1] == "proto" and set(counts.model_ids[:-1]) == set(toy_table.models)
    animals = counts.row("animals")
    # the animals expert covers dog, cat and bird: 6 sample images each, half of them photos
    assert counts.count[animals].sum() == 18 and counts.count[animals, :, 1].sum() == 9
    assert (counts.correct <= counts.count).all()
    # it is right 90% of the time on photos and 60% on grayscale: the ratio says photos are easier
    assert counts.accuracy("animals", "photo") > counts.accuracy("animals", "gray28")


def test_gap_climbs_to_related_nodes_and_reports_its_distance(toy_table):
    counts = StyleCounts.of(toy_table)
    dog = toy_table.graph.lookup("dog")[0]
    gap = counts.gap("animals", dog, "gray28", "photo")
    assert gap is not None and gap.ratio > 0 and gap.n_target >= 4
    assert gap.distance >= 0
    assert counts.gap("unknown-model", dog, "gray28", "photo") is None


def test_gap_rows_only_where_a_class_lacks_the_target_style():
    groups = np.array(["photo", "gray28", "gray28", "gray28"])
    klass = np.array([0, 0, 1, 1])
    assert gap_rows(groups, klass, "photo").tolist() == [False, False, True, True]


def test_domain_words_pick_an_existing_style(toy_table, toy_classes):
    ctx = build_context(toy_table, Task.create(toy_classes, domain="photograph"))
    assert ctx.target_style == "photo" and not ctx.style_gap.any()
    plain = build_context(toy_table, Task.create(toy_classes))
    assert plain.target_style is None and not plain.style_gap.any()


def test_borrowed_accuracy_for_a_class_without_sample_images(toy_table):
    counts = StyleCounts.of(toy_table)
    dog = toy_table.graph.lookup("dog")[0]
    i = counts.row("animals")
    inside = ~np.isnan(counts.beaten[i])
    # the share of wrong answers beating the right one is 0 exactly where the expert is right
    assert inside.sum() == counts.count[i].sum()
    assert (counts.beaten[i][inside] == 0).sum() == counts.correct[i].sum()
    two = counts.borrowed("animals", dog, "photo", 2)
    many = counts.borrowed("animals", dog, "photo", 50)
    assert two is not None and many is not None and two.n_images >= 4
    # more classes, more wrong answers to beat: the estimate cannot rise
    assert 0 <= many.accuracy <= two.accuracy <= 1
    assert counts.borrowed("animals", dog, "emoji", 2) is None  # no such style in the hub
    assert counts.borrowed("proto", dog, "photo", 2) is None  # prototypes need the class's images


def test_a_class_without_sample_images_borrows_its_models_accuracy(toy_table, toy_classes):
    from mll.selection import make_selector

    sel = make_selector("vlm").fit(toy_table).select(Task.create(toy_classes, domain="photograph"))
    bicycle = sel.classes[toy_classes.index("bicycle")]
    assert bicycle.evidence["proxy_images"] == 0
    assert bicycle.evidence["situation"] == "borrowed"
    assert 0 <= bicycle.evidence["proxy_accuracy"] <= 1 and bicycle.evidence["proxy_evidence"] > 0
    lo, hi = bicycle.interval
    assert lo <= bicycle.predicted_accuracy <= hi


def test_rival_heads_decide_a_borrowed_experts_stand_ins(toy_table):
    counts = StyleCounts.of(toy_table)
    dog = toy_table.graph.lookup("dog")[0]
    cat = toy_table.graph.lookup("cat")[0]
    heads = len(toy_table.models["animals"].info.classes)
    none = counts.borrowed("animals", dog, "photo", 3, rivals=np.zeros(heads, bool))
    every = counts.borrowed("animals", dog, "photo", 3, rivals=np.ones(heads, bool))
    assert none is not None and every is not None and every.accuracy <= none.accuracy
    # the task's other classes are not stand-ins for this one
    alone = counts.borrowed("animals", dog, "photo", 3, others=(cat,))
    assert alone is not None and alone.n_images < none.n_images
