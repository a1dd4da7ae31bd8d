"""The selector contract, checked for every registered method on the toy label table.

What a new method gets for free from ``Selector`` and must not break: ``fit`` validates every
declared parameter and returns the selector, ``select`` refuses to run unfitted, leaves the
selector exactly as it was, returns a frozen ``Selection`` and the same one every time, and
parameters round-trip through ``get_params``/``set_params``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from mll.errors import InvalidParameterError, NotBuiltError, NotFittedError, UnknownNameError
from mll.selection import LabelTable, Selection, Task, make_selector, selectors
from mll.selection.params import Interval, SequenceOf, check_params


def _target_accuracy(component) -> float:
    """A stand-in for accuracy on labelled target images: deterministic, prefers wide coverage."""
    return len(component.classes) + (0.5 if component.kind == "vlm" else 0.0)


def _params(name: str) -> dict:
    """What a method needs to run: the oracle alone needs target images."""
    return {"target_accuracy": _target_accuracy} if name == "oracle" else {}


METHODS = selectors.list()


@pytest.fixture(scope="module")
def task(toy_classes) -> Task:
    return Task.create(toy_classes)


@pytest.mark.parametrize("name", METHODS)
def test_every_parameter_is_keyword_only_and_declared(name):
    cls = selectors.get(name)
    assert set(cls.param_names()) == set(cls._parameter_constraints), \
        f"{cls.__name__}: declare a constraint for each __init__ parameter, and only for those"
    assert cls.name == name


@pytest.mark.parametrize("name", METHODS)
def test_fit_returns_self_and_select_needs_fit(name, toy_table, task):
    selector = make_selector(name, **_params(name))
    with pytest.raises(NotFittedError, match="not fitted"):
        selector.select(task)
    assert selector.fit(toy_table) is selector


@pytest.mark.parametrize("name", METHODS)
def test_select_changes_nothing_on_the_selector(name, toy_table, task):
    selector = make_selector(name, **_params(name)).fit(toy_table)
    before = dict(vars(selector))
    params = selector.get_params()
    selection = selector.select(task)
    assert vars(selector).keys() == before.keys()
    assert all(vars(selector)[k] is v for k, v in before.items())
    assert selector.get_params() == params
    assert isinstance(selection, Selection)
    with pytest.raises(dataclasses.FrozenInstanceError):
        selection.method = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("name", METHODS)
def test_selection_is_deterministic_and_complete(name, toy_table, task, toy_classes):
    selector = make_selector(name, **_params(name)).fit(toy_table)
    first, second = selector.select(task).to_dict(), selector.select(task).to_dict()
    first.pop("seconds"), second.pop("seconds")
    assert first == second
    assert first["method"] == name and len(first["classes"]) == len(toy_classes)
    assert first["models"] and set(first["models"]) <= set(toy_table.models) | {"toy-backbone"}
    for choice in first["classes"]:
        assert choice["covered_by"] in ("expert", "vlm", "none")
        if choice["predicted_accuracy"] is not None:
            low, high = choice["interval"]
            assert 0 <= low <= choice["predicted_accuracy"] <= high <= 1
    # the class without sample images says so; its estimate, if any, is borrowed from its
    # models' accuracy on related concepts' images
    bicycle = first["classes"][toy_classes.index("bicycle")]
    assert bicycle["evidence"]["proxy_images"] == 0
    assert bicycle["predicted_accuracy"] is None or bicycle["evidence"]["situation"] == "borrowed"
    assert any("bicycle" in w for w in first["warnings"])


@pytest.mark.parametrize("name", METHODS)
def test_params_round_trip(name):
    cls = selectors.get(name)
    selector = make_selector(name, **_params(name))
    params = selector.get_params()
    clone = cls(**params)
    assert clone.get_params() == params
    assert selector.set_params(**params) is selector and selector.get_params() == params
    assert repr(selector).startswith(f"{cls.__name__}(")
    with pytest.raises(InvalidParameterError, match="no parameter 'not_a_parameter'"):
        selector.set_params(not_a_parameter=1)
    with pytest.raises(InvalidParameterError, match="no parameter"):
        make_selector(name, not_a_parameter=1)


@pytest.mark.parametrize(("name", "param"), [(n, p) for n in METHODS
                                             for p in selectors.get(n).param_names()])
def test_every_parameter_is_validated_when_fit_starts(name, param, toy_table):
    """A string is no valid value of any parameter; the error names selector, parameter, value."""
    selector = make_selector(name, **_params(name)).set_params(**{param: "bogus"})
    cls_name = type(selector).__name__
    with pytest.raises(InvalidParameterError, match=rf"{cls_name}: parameter {param} must be .*"
                                                    r"got 'bogus' \(str\)"):
        selector.fit(toy_table)
    assert "table_" not in vars(selector)


@pytest.mark.parametrize(("name", "params"), [
    ("chco", {"cost": -0.1}), ("chco", {"cost": 1.5}), ("chco", {"cost": True}),
    ("chco", {"cost": float("nan")}), ("chco", {"budget_models": 0}),
    ("chco", {"budget_models": 2.0}), ("chco", {"budget_ms": 0}), ("chco", {"budget_ms": -5.0}),
    ("chco", {"exact_limit": 17}), ("chco", {"use_proto": 1}), ("chco", {"prune_heads": "yes"}),
    ("chco", {"expert_weights": ()}), ("chco", {"expert_weights": (1.0, 0.0)}),
    ("chco", {"expert_weights": "124"}),
    ("p2", {"alpha": 1.01}), ("p2", {"alpha": -0.5}), ("p2", {"k": 0}), ("p2", {"k": True}),
    ("p2", {"nodes": 0}), ("inb", {"k": 0}), ("inb", {"k": 1.5}), ("random", {"seed": -1}),
    ("random", {"k": False}), ("oracle", {"target_accuracy": 0.9}),
])
def test_out_of_range_values_are_refused(name, params, toy_table):
    with pytest.raises(InvalidParameterError, match=f"parameter {next(iter(params))} must be"):
        make_selector(name, **params).fit(toy_table)


@pytest.mark.parametrize(("name", "params"), [
    ("chco", {"cost": 0}), ("chco", {"cost": 1}), ("chco", {"budget_ms": 40}),
    ("chco", {"budget_models": np.int64(2)}), ("chco", {"expert_weights": [1, 3]}),
    ("chco", {"use_proto": np.bool_(False)}), ("p2", {"alpha": 1}), ("p2", {"alpha": np.float32(0.5)}),
    ("inb", {"k": 100}), ("random", {"seed": 2 ** 40}),
])
def test_meaningful_values_are_accepted(name, params, toy_table, task):
    """Ints where numbers are expected (``cost=0`` means every gain counts), numpy scalars."""
    selection = make_selector(name, **params).fit(toy_table).select(task)
    assert selection.models


def test_budget_bounds_the_models_chco_loads(toy_table, task):
    one = make_selector("chco", budget_models=1, use_proto=False).fit(toy_table).select(task)
    assert len(one.models) == 1


def test_what_a_method_learned_is_returned_not_stored(toy_table, task, toy_classes):
    chco = make_selector("chco").fit(toy_table).select(task)
    assert math.isfinite(chco.diagnostics["objective"])
    assert any("objective" in line for line in chco.explanation)
    p2 = make_selector("p2").fit(toy_table).select(task)
    assert np.asarray(p2.diagnostics["r"]).shape == (len(toy_table.vlms), len(toy_classes))
    modelgpt = make_selector("modelgpt").fit(toy_table).select(task)
    assert set(modelgpt.diagnostics["predicted_accuracy"]) == {m.id for m in toy_table.vlms}
    assert isinstance(chco.to_dict()["diagnostics"]["objective"], float)


def test_the_oracle_leaves_its_candidates_untouched(toy_table, task):
    oracle = make_selector("oracle", target_accuracy=_target_accuracy).fit(toy_table)
    selection = oracle.select(task)
    assert [c.role for c in selection.plan.components] == ["general"]
    from mll.selection import build_context

    roles = [c.role for c in oracle.candidates(build_context(toy_table, task))]
    assert "expert" in roles  # the experts it compared are still experts
    with pytest.raises(InvalidParameterError, match="needs target_accuracy"):
        make_selector("oracle").fit(toy_table).select(task)


def test_a_context_for_another_task_is_refused(toy_table, task):
    from mll.selection import build_context

    other = build_context(toy_table, Task.create(["dog", "cat"]))
    with pytest.raises(InvalidParameterError, match="another task"):
        make_selector("vlm").fit(toy_table).select(task, other)


def test_an_unknown_method_suggests_a_close_name():
    with pytest.raises(UnknownNameError, match="did you mean 'chco'"):
        make_selector("chc")


def test_constraint_messages_read_as_ranges():
    assert Interval(int, 1, None).describe() == "an integer in [1, inf)"
    assert Interval(float, 0, 1, closed="left").describe() == "a number in [0, 1)"
    assert "each item" in SequenceOf(Interval(float, 0, None, closed="neither")).describe()
    with pytest.raises(TypeError, match="no constraint declared"):
        check_params("Broken", {"x": 1}, {})


def test_label_table_construction_reads_nothing(tmp_path):
    """Constructing is free; the hub is read on first use, here where there is none."""
    missing = tmp_path / "no-hub"
    table = LabelTable(missing)
    assert table.hub_dir == missing.resolve() and not missing.exists()
    table.close()  # nothing was opened, nothing to close


def test_an_in_memory_table_has_no_hub_to_load_from(toy_table):
    with pytest.raises(NotBuiltError, match="in memory"):
        toy_table.adapter("animals")  # an expert: no text tower was given
    assert toy_table.default_vlm().id == "conse"  # the family that declares itself the patch
    sub = toy_table.subset(["clip", "animals"])
    assert sub.default_vlm().id == "clip" and set(toy_table.models) >= {"conse", "footwear"}


def test_chco_answers_classes_with_the_experts_that_cover_them(toy_table, task):
    """On the toy table the experts beat the general part on their own nodes, and CHCO sees it."""
    selection = make_selector("chco").fit(toy_table).select(task)
    covered = {c.name: c.covered_by for c in selection.classes}
    assert covered == {"dog": "expert", "cat": "expert", "sandal": "expert",
                       "sneaker": "expert", "car": "vlm", "bicycle": "vlm"}
    assert {"animals", "footwear"} <= set(selection.models)
