"""Which models serve a node and how well (mll.selection.coverage), and node search by name
(mll.graph.search), on the toy table with statistics computed as labelling computes them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mll.errors import InvalidParameterError, UnknownNameError
from mll.graph.search import search_names
from mll.labels.stats import expert_stats
from mll.selection.coverage import model_nodes, model_styles, node_models, sample_images

SANDAL, FOOTWEAR, BICYCLE, ENTITY = "n00000008", "n00000007", "n00000014", "n00000001"


@pytest.fixture(scope="module")
def table(toy_table):
    """The toy table with every model's per-node statistics as labelling writes them."""
    view = toy_table.subset(toy_table.models)
    models = {}
    for mid, label in toy_table.models.items():
        if label.kind == "expert":
            stats = expert_stats(toy_table.graph, label.outputs, toy_table.image_nodes.tolist(),
                                 label.info.wnids)[0]
        else:
            stats = dict(label.stats) | {"covered": np.asarray(label.stats["count"]) > 0}
        models[mid] = dataclasses.replace(label, stats=stats)
    view.models = models
    return view


def test_an_expert_serves_the_nodes_at_and_above_its_heads(table):
    footwear = table.models["footwear"]
    on_sandal = {m.model_id: m for m in node_models(table, SANDAL)}
    assert set(on_sandal) == {"footwear", "conse", "clip"}  # not the animal expert
    entry = on_sandal["footwear"]
    assert [h["wnid"] for h in entry.heads] == [SANDAL]
    at = list(footwear.stats["nodes"]).index(SANDAL)
    assert (entry.measured.images, entry.measured.correct) == (
        int(footwear.stats["count"][at]), int(footwear.stats["correct"][at]))
    above = {m.model_id: m for m in node_models(table, FOOTWEAR)}
    assert len(above["footwear"].heads) == 3
    assert above["footwear"].measured.images == 3 * on_sandal["footwear"].measured.images
    assert node_models(table, BICYCLE) == []  # no head there and no sample image to measure


def test_models_are_ranked_by_measured_accuracy_with_intervals(table):
    ranked = node_models(table, ENTITY)
    accuracies = [m.measured.accuracy for m in ranked]
    assert accuracies == sorted(accuracies, reverse=True) and len(ranked) == 4
    for m in ranked:
        lo, hi = m.measured.interval
        assert 0 <= lo <= m.measured.accuracy <= hi <= 1
        assert m.to_dict()["id"] == m.model_id
    with pytest.raises(UnknownNameError):
        node_models(table, "n99999999")


def test_a_model_reports_accuracy_on_every_node_it_covers(table):
    rows = model_nodes(table, "footwear")
    assert {r["wnid"] for r in rows} == {"n00000008", "n00000009", "n00000010"}
    assert [r["accuracy"] for r in rows] == sorted((r["accuracy"] for r in rows), reverse=True)
    assert {r["name"] for r in rows} == {"sandal", "sneaker", "boot"}
    assert len(model_nodes(table, "clip")) == 8  # a VLM: every node with sample images
    with pytest.raises(UnknownNameError, match="labelled model"):
        model_nodes(table, "nosuch")


def test_accuracy_per_style_counts_the_same_answers_by_style(table):
    for model_id in table.models:
        styles, nodes = model_styles(table, model_id), model_nodes(table, model_id)
        assert [s["style"] for s in styles] == ["gray28", "photo"]
        for key in ("images", "correct"):
            assert sum(s[key] for s in styles) == sum(n[key] for n in nodes), (model_id, key)
    with pytest.raises(UnknownNameError):
        model_styles(table, "nosuch")


def test_sample_images_at_and_below_a_node(table):
    assert sample_images(table, SANDAL) == {"at": 6, "below": 6}
    assert sample_images(table, FOOTWEAR) == {"at": 0, "below": 18}
    assert sample_images(table, BICYCLE) == {"at": 0, "below": 0}
    assert sample_images(table, ENTITY)["below"] == len(table.image_ids)


def test_node_search_by_name(table):
    graph = table.graph
    assert search_names(graph, "sandal") == [SANDAL]
    assert search_names(graph, "Foot")[0] == FOOTWEAR  # a prefix, any case
    assert "n00000009" in search_names(graph, "shoe")  # inside 'gym_shoe'
    assert search_names(graph, "gym shoe") == ["n00000009"]
    assert search_names(graph, SANDAL) == [SANDAL]
    assert search_names(graph, "n12345678") == []
    assert len(search_names(graph, "o", limit=3)) == 3
    with pytest.raises(InvalidParameterError):
        search_names(graph, "  ")
