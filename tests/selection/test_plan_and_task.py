"""The combination rule and task validation, on small arrays the tests build themselves."""

from __future__ import annotations

import numpy as np
import pytest

from mll.errors import InvalidParameterError, NotFittedError
from mll.selection import Component, Plan, Task, combine, make_selector


def _expert(classes, n_classes, weight=1.0):
    head_map = np.zeros((len(classes), n_classes), dtype=np.float32)
    for j, k in enumerate(classes):
        head_map[j, k] = 1
    return Component("expert", "e", weight, "expert", list(classes), head_map=head_map)


def test_gated_expert_is_trusted_only_inside_its_domain():
    # 4 classes; the general part is unsure within {0, 1} but sure the image is in {0, 1}
    general = Component("vlm", "g", 1.0, "general")
    p_g = np.array([[0.45, 0.45, 0.05, 0.05],   # in the expert's domain
                    [0.05, 0.05, 0.45, 0.45]])  # outside it
    expert = _expert([0, 1], 4)
    q = expert.proba(np.array([[0.1, 0.9], [0.95, 0.05]]))  # confidently "class 1", then "class 0"
    out = combine(Plan([general, expert], "gated", 4), [p_g, q])
    assert out.argmax(axis=1)[0] == 1  # the expert decides inside its domain
    assert out.argmax(axis=1)[1] in (2, 3)  # and is ignored outside it (gate ~0.1)
    assert np.allclose(out.sum(axis=1), 1)


def test_expert_head_mass_sums_to_classes():
    # heads 0 and 1 both vote for class 0 (e.g. two kinds of boot for "footwear")
    head_map = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    comp = Component("expert", "e", 1.0, "expert", [0, 1], head_map=head_map)
    p = comp.proba(np.array([[0.3, 0.3, 0.4]]))
    assert np.allclose(p, [[0.6, 0.4]])


def test_entropy_rule_prefers_confident_models():
    a = np.array([[0.9, 0.1]])
    b = np.array([[0.4, 0.6]])
    comps = [Component("vlm", "a", 1.0, "general"), Component("vlm", "b", 1.0, "general")]
    assert combine(Plan(comps, "entropy", 2), [a, b]).argmax() == 0


def test_task_validation():
    with pytest.raises(InvalidParameterError, match="at least two"):
        Task.create(["cat"])
    with pytest.raises(InvalidParameterError, match="give at least two"):
        Task.create([])
    with pytest.raises(InvalidParameterError, match="same name after normalisation"):
        Task.create(["Ankle boot", "ankle_boot"])
    with pytest.raises(InvalidParameterError, match="empty class name"):
        Task.create(["cat", "  "])
    with pytest.raises(InvalidParameterError, match="not a wnid"):
        Task.create(["cat", "dog"], pinned={"cat": "feline"})
    task = Task.create("cat, dog,  mouse ", domain=" emoji ")
    assert task.classes == ("cat", "dog", "mouse") and task.domain == "emoji"


def test_task_file_with_pins(tmp_path):
    f = tmp_path / "classes.txt"
    f.write_text("# my task\nmouse\tn03793489\nkeyboard\n\nmonitor\n")
    task = Task.from_file(f, domain="office")
    assert task.classes == ("mouse", "keyboard", "monitor")
    assert task.pinned == {"mouse": "n03793489"}
    with pytest.raises(InvalidParameterError, match="does not exist"):
        Task.from_file(tmp_path / "missing.txt")


def test_selector_params_and_not_fitted():
    sel = make_selector("p2", alpha=0.5, k=3)
    assert sel.get_params() == {"alpha": 0.5, "k": 3, "nodes": 5}
    with pytest.raises(InvalidParameterError, match="no parameter"):
        sel.set_params(beta=1)
    with pytest.raises(NotFittedError):
        sel.select(Task.create(["cat", "dog"]))
    with pytest.raises(InvalidParameterError):
        make_selector("p2", alpha=1.5).fit(object())
    from mll.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="did you mean 'chco'"):
        make_selector("chc")


def test_close_relatives_stand_in_with_a_discount(graph):
    from types import SimpleNamespace

    from mll.selection.components import RELATIVE_DISCOUNT, expert_component

    pug, dog, cat, boot = (graph.resolve(w) for w in ("pug", "dog", "cat", "boot"))
    house_cat = graph.resolve("domestic cat")
    assert dog in graph.parents(pug) and cat in graph.parents(house_cat)
    heads = [SimpleNamespace(wnid=w, name=graph.name(w)) for w in (dog, cat, boot)]
    label = SimpleNamespace(id="e", info=SimpleNamespace(classes=heads))
    ctx = SimpleNamespace(class_nodes=[pug, house_cat], n_classes=2)
    table = SimpleNamespace(graph=graph, ancestors=lambda w: graph.ancestors(w, include_self=True))
    comp = expert_component(table, label, ctx)
    # no head is a pug or a house cat: their parents' heads stand in, one edge away
    assert comp.head_map[0, 0] == RELATIVE_DISCOUNT and comp.head_map[1, 1] == RELATIVE_DISCOUNT
    assert not comp.head_map[2].any() and comp.classes == [0, 1]


def _proto_setup(features, classes, groups):
    from types import SimpleNamespace

    from mll.selection.components import proto_component

    feats = np.asarray(features, dtype=np.float64)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    n = len(feats)
    table = SimpleNamespace(proto_features=feats, image_groups=np.asarray(groups),
                            proto_backbone="b")
    ctx = SimpleNamespace(proxy_index=np.arange(n), proxy_class=np.asarray(classes),
                          proxy_weight=np.ones(n), n_classes=max(classes) + 1)
    return table, ctx, proto_component(table, ctx)


def test_prototypes_never_score_with_an_augmented_copy_of_the_image():
    from mll.selection.proxy import proxy_proba

    # class 0: one source image in three copies (group 0) and a far image; class 1 is nearer to
    # the copies than the far image is
    feats = [[1, 1, 0], [1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0.2, 0], [1, 0.1, 0]]
    classes = [0, 0, 0, 0, 1, 1]
    table, ctx, comp = _proto_setup(feats, classes, [0, 1, 2, 3, 4, 5])  # copies not grouped
    assert (proxy_proba(table, comp, ctx).argmax(axis=1)[:3] == 0).all()  # copies vote: a leak
    table, ctx, comp = _proto_setup(feats, classes, [0, 0, 0, 1, 2, 3])
    assert (proxy_proba(table, comp, ctx).argmax(axis=1)[:3] == 1).all()


def test_prototypes_impute_classes_with_a_single_source_image():
    from mll.selection.proxy import proxy_proba

    # classes 0 and 1 have two source images each, both recognised; class 2 has one (two copies)
    feats = [[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0.1, 1, 0], [0, 0, 1], [0, 0, 1]]
    table, ctx, comp = _proto_setup(feats, [0, 0, 1, 1, 2, 2], [0, 1, 2, 3, 4, 4])
    pred = proxy_proba(table, comp, ctx).argmax(axis=1)
    assert (pred[:4] == [0, 0, 1, 1]).all()
    assert (pred[4:] == 2).all()  # rho = 1 on the judged images: answered from its own mean
    # when the judged images are all wrong, rho = 0 and the lone class is never answered
    feats = [[1, 0, 0], [0, 1, 0], [0, 1, 0.1], [1, 0, 0.1], [0, 0, 1], [0, 0, 1]]
    table, ctx, comp = _proto_setup(feats, [0, 0, 1, 1, 2, 2], [0, 1, 2, 3, 4, 4])
    pred = proxy_proba(table, comp, ctx).argmax(axis=1)
    assert (pred[4:] != 2).all()


def test_incremental_gated_search_matches_the_combination():
    from types import SimpleNamespace

    from mll.selection.methods.chco import _GatedSearch
    from mll.selection.proxy import proxy_accuracy

    rng = np.random.default_rng(0)
    n, k = 200, 6
    ctx = SimpleNamespace(proxy_class=rng.integers(0, k, n), proxy_weight=rng.uniform(0.5, 2, n),
                          n_classes=k)
    probas = {}

    class Scorer:  # fixed random probabilities per component
        def proba(self, comp):
            if id(comp) not in probas:
                p = rng.dirichlet(np.ones(k), n).astype(np.float32)
                if comp.role == "expert":
                    p[:, [c for c in range(k) if c not in comp.classes]] = 0
                    p /= p.sum(axis=1, keepdims=True)
                probas[id(comp)] = (comp, p)
            return probas[id(comp)][1]

        def store(self, comp, p):
            probas[id(comp)] = (comp, p)

    general = [Component("vlm", "g", 1.0, "general")]
    experts = [_expert([0, 1, 2], k, 2.0), _expert([2, 3, 4, 5], k, 2.0)]
    experts[1].source = "e2"
    state = _GatedSearch(Scorer(), ctx, general, cost=0.01)

    def exact(components):
        plan = Plan(components, "gated", k)
        pred = combine(plan, [probas[id(c)][1] for c in components]).argmax(axis=1)
        return proxy_accuracy(pred, ctx) - 0.01 * len({c.source for c in components})

    assert np.isclose(state.score_with(experts), exact(general + experts))
    for e in experts:
        state.add(e)
    assert np.isclose(state.value, exact(general + experts))
    trial = _expert([2, 3, 5], k, 2.0)
    trial.source = "e2"
    before = state.value
    kept = state.try_swap(experts[1], trial, 4)
    assert np.allclose(probas[id(trial)][1][:, 4], 0)
    after = exact(general + [experts[0], trial])
    assert kept == (after > before + 1e-9)
    assert np.isclose(state.value, after if kept else before)


def test_a_sense_whose_sample_images_fit_the_domain_wins_a_close_match():
    from types import SimpleNamespace

    from mll.graph.match import Candidate
    from mll.selection.context import _sense_by_look

    table = SimpleNamespace(node_styles={"container": {"emoji/openmoji"},
                                         "handbag": {"gray28/fashion-mnist", "emoji/openmoji"},
                                         "quantity": set()})
    look = {"emoji/openmoji": 0.2, "gray28/fashion-mnist": 0.6}  # domain: small grayscale image
    cands = [Candidate("container", "bag", 0.79, True, {}),
             Candidate("handbag", "bag", 0.72, True, {}),
             Candidate("quantity", "bag", 0.68, True, {})]
    assert _sense_by_look(table, cands, look) == "handbag"
    assert _sense_by_look(table, cands, {}) == "container"  # no domain words: the match stands
    far = [cands[0], Candidate("handbag", "bag", 0.60, True, {})]  # too far behind on the words
    assert _sense_by_look(table, far, look) == "container"
    other_word = [cands[0], Candidate("handbag", "purse", 0.75, False, {})]
    assert _sense_by_look(table, other_word, look) == "container"
