"""The starter hub: its plans, and the quick hub built for real on the real corpus."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mll.cli import main
from mll.starter import build_starter, full_plan, quick_plan


@pytest.mark.parametrize("plan, experts, lites, vlms", [(quick_plan(), 12, 1, 2),
                                                       (full_plan(), 30, 3, 3)])
def test_plans_are_big_enough_and_keyed_by_unique_names(plan, experts, lites, vlms):
    lite = [p for p in plan.pretrained if p.family == "efficientnet-lite"]
    conse = [p for p in plan.pretrained if p.family == "conse"]
    assert len(plan.gray) + len(plan.heads) >= experts
    assert len(lite) >= lites and len(conse) + len(plan.lits) >= vlms
    assert len(set(plan.names)) == len(plan.names)
    assert {"cnn-footwear", "cnn-fashion10", "cnn-fashion10-weak", "head-animals"} <= set(plan.names)


@pytest.fixture(scope="module")
def hub_state(starter_hub):
    """Every model of the starter hub with whether its label is published."""
    from mll.corpus import Corpus
    from mll.graph import open_graph
    from mll.hub import Hub
    from mll.labels import LabelStore

    version = (open_graph(starter_hub).version, Corpus.open(starter_hub).version)
    store = LabelStore(starter_hub)
    with Hub.open(starter_hub) as hub:
        return [(m, store.is_published(m.content_hash, *version)) for m in hub.list()]


@pytest.mark.slow
def test_quick_hub_holds_labelled_experts_and_vlms(hub_state):
    models = {m.name: m for m, _ in hub_state}
    assert set(quick_plan().names) <= set(models)
    experts = [m for m in models.values() if m.kind == "expert"]
    assert len(experts) >= 12
    assert sum(m.family == "efficientnet-lite" for m in experts) >= 1
    assert sum(m.kind == "vlm" for m in models.values()) >= 2
    assert all(labelled for _, labelled in hub_state)


@pytest.mark.slow
def test_trained_experts_beat_chance_on_held_out_images(hub_state):
    trained = [m for m, _ in hub_state if m.family == "torch-safetensors"]
    assert len(trained) >= 12
    for m in trained:
        acc = m.metrics["heldout_accuracy"]
        assert m.metrics["n_heldout"] > 0 and acc > 1 / len(m.classes), (m.name, acc)
        assert all(c.wnid and c.confirmed for c in m.classes), m.name
    by_name = {m.name: m.metrics["heldout_accuracy"] for m in trained}
    assert by_name["cnn-fashion10"] > 0.6 and by_name["cnn-digits0-4"] > 0.8
    assert by_name["cnn-fashion10"] > by_name["cnn-fashion10-weak"]


@pytest.mark.slow
def test_second_build_adds_nothing(starter_hub, capsys):
    report = build_starter(starter_hub, quick=True)
    assert report.added == [] and report.labels["models_labelled"] == 0
    assert report.seconds < 60
    assert main(["starter", "--quick", "--hub", str(starter_hub), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["added"] == 0 and doc["counts"]["experts"] >= 12
    assert {m["name"] for m in doc["models"]} == set(quick_plan().names)


@pytest.mark.slow
def test_a_missing_model_is_rebuilt_alone(starter_hub):
    """What an interrupted build leaves is a hub without its last models: the next build adds them."""
    from mll.hub import Hub

    with Hub.open(starter_hub) as hub:
        hub.remove("cnn-trousers-bags")
    report = build_starter(starter_hub, quick=True)
    assert [m.name for m in report.added] == ["cnn-trousers-bags"] and report.replaced == []
    assert report.added[0].heldout_accuracy > 0.5
    assert report.labels["models_labelled"] <= 1 and report.labels["models_up_to_date"] >= 23


@pytest.mark.slow
def test_a_model_whose_recipe_changed_is_replaced(starter_hub, monkeypatch):
    import mll.starter.build as build_module

    plan = quick_plan()
    changed = dataclasses.replace(plan, gray=tuple(
        dataclasses.replace(g, epochs=2) if g.name == "cnn-trousers-bags" else g
        for g in plan.gray))
    monkeypatch.setattr(build_module, "starter_plan", lambda quick: changed)
    report = build_starter(starter_hub, quick=True)
    assert report.replaced == ["cnn-trousers-bags"]
    assert [m.name for m in report.added] == ["cnn-trousers-bags"]
    monkeypatch.undo()
    assert build_starter(starter_hub, quick=True).replaced == ["cnn-trousers-bags"]
    assert build_starter(starter_hub, quick=True).added == []


@pytest.mark.slow
def test_full_plan_refuses_a_hub_of_quick_models(starter_hub):
    from mll.errors import MLLError

    with pytest.raises(MLLError, match="another --hub"):
        build_starter(starter_hub, quick=False)
