"""chco+look: the target's style group seen in unlabelled target images, on the toy table."""

from __future__ import annotations

import numpy as np
import pytest

from mll.errors import InvalidParameterError
from mll.selection import Task, build_context, make_selector
from mll.selection.style import style_group, style_of_images


def _images_of(table, group: str) -> np.ndarray:
    groups = np.array([style_group(s) for s in table.image_styles.tolist()])
    return table.proto_features[groups == group]


@pytest.mark.parametrize("group", ["photo", "gray28"])
def test_images_vote_for_their_own_style_group(toy_table, group):
    feats = _images_of(toy_table, group) * 3.0  # scale does not matter: features are normalised
    style, shares = style_of_images(toy_table, feats)
    assert style == group and shares[group] == max(shares.values())
    assert sum(shares.values()) == pytest.approx(1.0)
    assert style_of_images(toy_table, np.zeros((0, feats.shape[1]))) == (None, {})


def test_a_seen_style_replaces_the_domain_words(toy_table, toy_classes):
    task = Task.create(toy_classes, domain="photograph")
    seen = build_context(toy_table, task, target_style="gray28")
    assert seen.target_style == "gray28"
    groups = np.array([style_group(s) for s in toy_table.image_styles[seen.proxy_index].tolist()])
    for k in set(seen.proxy_class.tolist()):  # the proxy weighs the seen style, class by class
        mask = seen.proxy_class == k
        assert seen.proxy_weight[mask & (groups == "gray28")].sum() > 0.99 * seen.proxy_weight[mask].sum()
    sel = make_selector("chco").fit(toy_table).select(task, seen)
    assert sel.calibration["situation"] == "direct" and sel.interval is not None
    with pytest.raises(InvalidParameterError, match="target style 'emoji'"):
        build_context(toy_table, task, target_style="emoji")
