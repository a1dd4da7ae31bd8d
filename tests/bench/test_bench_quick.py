"""The quick benchmark on the quick starter hub: the papers' claims, asserted on real images."""

from __future__ import annotations

import json

import pytest

from mll.bench import BenchConfig, run_bench, write_results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(starter_hub, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    result = run_bench(starter_hub, BenchConfig(quick=True, orders=10))
    write_results(result, out)
    return result, out


def test_outputs_written(report):
    result, out = report
    doc = json.loads((out / "results.json").read_text())
    assert {"tasks", "methods", "accuracy", "mean_accuracy", "scalability"} <= set(doc)
    assert (out / "results.md").read_text().startswith("# mll benchmark")
    assert (out / "scalability.png").stat().st_size > 0 and (out / "ablations.png").is_file()
    names = {t["name"] for t in doc["tasks"]}
    assert {"fashion-mnist", "animal-mnist", "mnist", "emoji-fluent-flat", "tuxpaint-photos",
            "foolbox-imagenet", "mixed-clothes-animals", "mixed-digits-fruits"} <= names
    emoji = next(t for t in doc["tasks"] if t["name"] == "emoji-fluent-flat")
    assert emoji["classes"] >= 100


def test_chco_beats_inb_random_and_vlm_on_the_mean(report):
    result, _ = report
    mean = result["mean_accuracy"]
    for baseline in ("inb-k1", "random", "vlm"):
        assert mean["chco"] > mean[baseline], (baseline, mean)
        assert result["chco_vs"][baseline]["low"] > 0, result["chco_vs"][baseline]


def test_accuracy_grows_with_hub_size(report):
    result, _ = report
    curve = result["scalability"]["mean"]
    assert len(result["scalability"]["curves"]) >= 10
    assert curve[-1] > curve[0]


def test_selection_is_cheap_and_predictions_are_reported(report):
    result, _ = report
    assert all(v is not None for v in result["predicted_mae"].values() if v is not None)
    assert result["labelling"]["models"] >= 15
    assert all(len(rows) == 5 for rows in [result["ablation_alpha"]])
    assert [row["k"] for row in result["ablation_k"]["p2"]] == [1, 2, 3, 4, 5, 6]


def test_mean_accuracy_carries_its_resolution(report):
    result, _ = report
    for m, (lo, hi) in result["mean_accuracy_interval"].items():
        assert lo <= result["mean_accuracy"][m] <= hi, m
        assert hi - lo < 0.1, (m, lo, hi)  # the quick run resolves a mean to a few points


def test_photo_group_runs_on_held_out_concepts_and_chco_holds_its_own(report, starter_hub):
    """Photo tasks' concepts never had their photos labelled on; on them chco is at least as good
    as the VLM alone, P2 and the prototypes (the style of the target is part of the evidence)."""
    from mll.corpus import Corpus

    result, _ = report
    photo = result["style_groups"]["photo"]
    assert {"tuxpaint-photos", "foolbox-imagenet"} <= set(photo["tasks"])
    for baseline in ("vlm", "p2-k1", "proto"):
        assert photo["accuracy"]["chco"] >= photo["accuracy"][baseline], (baseline, photo)
    assert photo["predicted_mae"]["chco"] is not None
    corpus = Corpus.open(starter_hub)
    labelled = {r.wnid for r in corpus.records(role="sample") if r.style.startswith("photo/")}
    evaluated = {r.wnid for r in corpus.records(role="eval", source="tuxpaint")
                 if r.style.startswith("photo/")}
    assert evaluated and not labelled & evaluated


def test_predicted_accuracy_carries_a_calibrated_interval_with_measured_coverage(report):
    """90% intervals (fitted on proxy tasks from the sample role, never on these tasks): their
    coverage over tasks and classes is reported overall and per style group."""
    result, out = report
    assert set(result["interval_coverage"]) == set(result["methods"])
    for m in ("chco", "vlm", "p2-k1"):
        for t in result["tasks"]:
            lo, hi = result["predicted_interval"][t["name"]][m]
            assert 0 <= lo <= result["predicted"][t["name"]][m] <= hi <= 1
    # measured on the quick hub: 7 of 8 tasks (foolbox's 19 photo classes, 13 sample images
    # between them, are predicted far below their measured 1.0) and 87% of classes
    assert result["interval_coverage"]["chco"] >= 0.75
    assert result["class_interval_coverage"]["chco"] >= 0.8
    for group in ("photo", "gray28", "emoji"):
        assert result["style_groups"][group]["interval_coverage"]["chco"] is not None
    assert result["proxy_mae"]["chco"] is not None
    assert "90% interval coverage" in (out / "results.md").read_text()


def test_chco_look_sees_each_tasks_style_in_its_images(report):
    """chco+look takes the target's style from the unlabelled eval images (their pixels only)."""
    result, _ = report
    assert "chco+look" in result["methods"]
    seen = {name: doc["style"] for name, doc in result["looked_style"].items()}
    assert seen["tuxpaint-photos"] == seen["foolbox-imagenet"] == "photo"
    assert seen["emoji-fluent-flat"] == "emoji"
    assert {seen[n] for n in ("fashion-mnist", "animal-mnist", "mnist")} == {"gray28"}
    assert result["mean_accuracy"]["chco+look"] > result["mean_accuracy"]["vlm"]
