"""Calibrated predicted accuracy: rules, their fit on proxy-task records, and what selections carry."""

from __future__ import annotations

import numpy as np
import pytest

from mll.selection import Task, make_selector, selectors
from mll.selection import calibration as cal
from mll.selection.calibration import Rule, fit, fit_rule, rule, situation


def test_rule_clips_to_the_unit_interval_and_holds_its_value():
    # shrunk towards 0.5 by 2 pseudo-images against 8 effective images: 0.9 -> 0.82
    value, (lo, hi) = Rule(a=0.5, k=2.0, tau=0.1, low=-2.0, high=1.5).apply(0.9, 8.0)
    assert value == pytest.approx(0.82) and lo == pytest.approx(0.62) and hi == pytest.approx(0.97)
    value, (lo, hi) = Rule(tau=0.1, low=-3, high=3).apply(0.95, 3.0)
    assert (value, hi) == (0.95, 1.0) and lo == pytest.approx(0.65)
    assert Rule().apply(0.4, 3.0) == (0.4, (0.0, 1.0))  # unfitted: the whole range


def test_more_evidence_moves_the_proxy_less():
    r = Rule(a=0.5, k=4.0, tau=0.1, low=-1.6, high=1.6)
    assert r.value(0.9, 1.0) < r.value(0.9, 10.0) < r.value(0.9, 1000.0) < 0.9


def test_measured_interval_widens_with_few_images():
    r = Rule(tau=0.05, low=-1.645, high=1.645)
    wide, narrow = r.measured_interval(0.7, 5.0, 2), r.measured_interval(0.7, 5.0, 1000)
    assert wide[0] < narrow[0] < 0.7 < narrow[1] < wide[1]
    assert narrow == pytest.approx(r.apply(0.7, 5.0)[1], abs=0.01)


def test_situations():
    assert situation(None, False) == "nodomain" and situation(None, True) == "nodomain"
    assert situation("photo", True) == "carried" and situation("emoji", False) == "direct"


def test_rules_fall_back_to_pooled_methods_and_situations(monkeypatch):
    doc = {"rules": {"chco": {"task": {"direct": {"a": 0.0, "k": 0.0, "low": -0.1, "high": 0.1,
                                                  "n": 30}}},
                     "*": {"task": {"any": {"a": 0.0, "k": 0.0, "low": -0.3, "high": 0.2, "n": 90}},
                           "class": {"any": {"a": 0.0, "k": 0.0, "low": -0.5, "high": 0.4,
                                             "n": 900}}}}}
    monkeypatch.setattr(cal, "fitted", lambda: doc)
    assert rule("chco", "task", "direct").low == -0.1
    assert rule("chco", "task", "carried").low == -0.3  # no carried rule for chco: pooled
    assert rule("vlm", "class", "direct").high == 0.4
    assert rule("vlm", "nothing", "direct") == Rule()


def test_shipped_rules_cover_every_zero_shot_method_at_both_levels():
    rules = cal.fitted()["rules"]
    for name in selectors.list():
        if selectors.get(name).zero_shot:
            for level in ("task", "class"):
                for where in cal.SITUATIONS:
                    r = rule(name, level, where)
                    assert r.n > 0 and r.low <= 0 <= r.high, (name, level, where)
    assert set(rules["*"]["task"]) >= {"any", *cal.SITUATIONS}


def _records(rng, tasks: int, per_task: int, prior_images: float, noise: float) -> list[dict]:
    """Classes whose proxy accuracy is an optimistic estimate on ``e`` sample images: the truth
    is the proxy pulled towards 0.5 by ``prior_images`` pseudo-images, plus noise."""
    out = []
    for t in range(tasks):
        shift = rng.normal(0, noise)  # tasks differ as a whole, so held-out tasks are honest
        for _ in range(per_task):
            p, e = rng.uniform(0.2, 1.0), float(rng.choice([1.0, 2.0, 5.0, 20.0]))
            truth = 0.5 + (p - 0.5) * e / (e + prior_images)
            theta = float(np.clip(truth + shift + rng.normal(0, noise / 2), 0, 1))
            n = int(rng.integers(3, 21))  # a few hidden images per class
            out.append({"task": f"t{t}", "method": "m", "level": "class", "situation": "direct",
                        "proxy": p, "evidence": e, "measured": rng.binomial(n, theta) / n,
                        "images": n, "theta": theta})
    return out


def test_fit_shrinks_an_overconfident_proxy_and_covers_about_ninety_percent():
    rng = np.random.default_rng(0)
    records = _records(rng, tasks=40, per_task=10, prior_images=2.0, noise=0.06)
    rules, checks = fit(records)
    r = Rule(**rules["m"]["class"]["direct"])
    assert 0.5 <= r.k <= 8 and 0.35 <= r.a <= 0.65  # the proxy overstates differences: shrunk
    check = checks["m"]["class"]["direct"]
    assert check["calibrated_mae_heldout"] < check["raw_mae"]
    assert 0.8 <= check["coverage_heldout"] <= 0.97
    fresh = _records(np.random.default_rng(1), tasks=40, per_task=10, prior_images=2.0, noise=0.06)
    # the shown interval is about the true accuracy, not the noisy few-image measurement (tau's
    # moment estimate alone, 0.046 against a true 0.069, covered 69%; its bootstrap upper 0.072)
    inside = [lo <= x["theta"] <= hi for x in fresh
              for _, (lo, hi) in [r.apply(x["proxy"], x["evidence"])]]
    assert 0.8 <= np.mean(inside) <= 0.99
    assert r.tau < 0.12  # the binomial noise of 3-20 images is not counted as spread
    measured = [lo <= x["measured"] <= hi for x in fresh
                for lo, hi in [r.measured_interval(x["proxy"], x["evidence"], x["images"])]]
    assert 0.8 <= np.mean(measured) <= 0.99
    assert set(rules) == {"m", "*"} and "any" in rules["*"]["class"]


def test_fit_keeps_an_honest_proxy_unshrunk():
    rng = np.random.default_rng(2)
    proxy = rng.uniform(0.1, 0.9, 200)
    measured = np.clip(proxy + rng.normal(0, 0.05, 200), 0, 1)
    tasks = np.repeat(np.arange(20), 10)
    r, check = fit_rule(proxy, measured, np.full(200, 1000), np.full(200, 5.0), tasks)
    assert (r.a, r.k) == (0.0, 0.0)
    assert r.low < 0 < r.high and 0.03 < r.tau < 0.07 and check["width"] < 0.3


def test_too_few_records_leave_the_interval_open():
    low, high = cal._quantiles(np.array([0.0, 0.1, -0.1]))
    assert (low, high) == (-cal.OPEN, cal.OPEN)
    assert Rule(tau=0.1, low=low, high=high).apply(0.5, 3.0)[1] == (0.0, 1.0)


@pytest.mark.parametrize("name", [n for n in selectors.list() if n != "oracle"])
def test_selections_carry_calibrated_intervals(name, toy_table, toy_classes):
    params = {"k": 1} if name in ("p2", "inb", "random") else {}
    for domain in ("photograph", ""):
        sel = make_selector(name, **params).fit(toy_table).select(
            Task.create(toy_classes, domain=domain))
        info = sel.calibration
        assert info["level"] == cal.LEVEL
        assert info["situation"] == ("direct" if domain else "nodomain")
        lo, hi = sel.interval
        assert 0 <= lo <= sel.predicted_accuracy <= hi <= 1
        expected = rule(name, "task", info["situation"]).apply(info["proxy_accuracy"],
                                                               info["proxy_evidence"])
        assert (sel.predicted_accuracy, sel.interval) == expected
        for c in sel.classes:
            if c.predicted_accuracy is None:
                assert c.interval is None
                continue
            # a class without sample images borrows its models' accuracy on related concepts
            assert c.evidence["situation"] in (info["situation"], "borrowed")
            assert (c.evidence["situation"] == "borrowed") == (c.evidence["proxy_images"] == 0)
            assert (c.predicted_accuracy, c.interval) == rule(
                name, "class", c.evidence["situation"]).apply(c.evidence["proxy_accuracy"],
                                                              c.evidence["proxy_evidence"])
        doc = sel.to_dict()
        assert doc["calibration"]["proxy_accuracy"] == info["proxy_accuracy"]


def test_a_hubs_own_rules_hold_only_for_the_models_they_were_fitted_on(tmp_path, toy_table):
    import json
    from types import SimpleNamespace

    own = {"a": 0.5, "k": 0.0, "tau": 0.05, "low": -1.0, "high": 1.0, "n": 10}
    doc = {"level": cal.LEVEL, "models": sorted(toy_table.models), "fitted_on": "test",
           "rules": {"chco": {"task": {"any": own}}}}
    (tmp_path / cal.HUB_FILE).write_text(json.dumps(doc))
    same = SimpleNamespace(hub_dir=tmp_path, models=toy_table.models)
    assert cal.rules_for(same)["fitted_on"] == "test"
    assert rule("chco", "task", "direct", cal.rules_for(same)) == Rule(**own)
    # a method the hub's file lacks takes the shipped rule, not a pooled one from the hub
    assert rule("vlm", "task", "direct", cal.rules_for(same)) == rule("vlm", "task", "direct")
    changed = SimpleNamespace(hub_dir=tmp_path, models={"another": None})
    assert cal.rules_for(changed) is cal.fitted()
    assert cal.rules_for(SimpleNamespace(hub_dir=None, models={})) is cal.fitted()
    (tmp_path / cal.HUB_FILE).write_text("{not json")
    assert cal.rules_for(same) is cal.fitted()
