"""Per-node statistics of a model's outputs on the sample images, and experts' domain detectors.

Counts, not only rates, so that selection can put intervals on every estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import softmax

from ..graph import SemanticGraph

DETECTOR_FEATURES = 7  # top-5 sorted probabilities, entropy, margin


def head_closure(graph: SemanticGraph, head_wnids: Sequence[str | None],
                 node_wnids: Sequence[str]) -> np.ndarray:
    """(nodes, heads) bool: head h answers correctly for images of node v (h is v or above it)."""
    heads = {w: j for j, w in enumerate(head_wnids) if w}
    out = np.zeros((len(node_wnids), len(head_wnids)), dtype=bool)
    for i, v in enumerate(node_wnids):
        for anc in graph.ancestors(v, include_self=True) & heads.keys():
            for j, w in enumerate(head_wnids):
                if w == anc:
                    out[i, j] = True
    return out


def output_pattern(probs: np.ndarray) -> np.ndarray:
    """Features of an expert's output that tell in-domain from out-of-domain images."""
    k = min(5, probs.shape[1])
    top = -np.sort(-probs, axis=1)[:, :5]
    if k < 5:
        top = np.pad(top, ((0, 0), (0, 5 - k)))
    entropy = -(probs * np.log(np.clip(probs, 1e-8, 1))).sum(axis=1) / np.log(max(probs.shape[1], 2))
    return np.column_stack([top, entropy, top[:, 0] - top[:, 1]]).astype(np.float32)


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve; nan when one class is missing (nothing to rank against)."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, scores))


def fit_domain_detector(probs: np.ndarray, in_domain: np.ndarray, seed: int = 0) -> dict:
    """Logistic regression on the output pattern; AUROC by 5-fold cross-validation.

    Max softmax alone is a poor trust signal between narrow experts (it can be more confident on
    foreign images than on its own), so the detector learns from the whole pattern and is
    compared with max softmax on the same images.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    x = output_pattern(probs)
    y = in_domain.astype(int)
    result = {"auroc_max_softmax": auroc(x[:, 0], in_domain), "n_in": int(y.sum()),
              "n_out": int(len(y) - y.sum())}
    if min(result["n_in"], result["n_out"]) < 5:
        result |= {"auroc": float("nan"), "coef": np.zeros(DETECTOR_FEATURES).tolist(),
                   "intercept": 0.0}
        return result
    scores = np.zeros(len(y))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    for train, test in folds.split(x, y):
        model = LogisticRegression(C=1.0, max_iter=500, class_weight="balanced").fit(x[train], y[train])
        scores[test] = model.decision_function(x[test])
    model = LogisticRegression(C=1.0, max_iter=500, class_weight="balanced").fit(x, y)
    result |= {"auroc": auroc(scores, in_domain), "coef": model.coef_[0].tolist(),
               "intercept": float(model.intercept_[0])}
    return result


def expert_stats(graph: SemanticGraph, probs: np.ndarray, image_nodes: Sequence[str],
                 head_wnids: Sequence[str | None]) -> tuple[dict[str, np.ndarray], dict]:
    """Node-level counts for an expert plus its domain detector."""
    nodes = sorted(set(image_nodes))
    node_idx = {v: i for i, v in enumerate(nodes)}
    img_node = np.array([node_idx[v] for v in image_nodes], dtype=np.int64)
    closure = head_closure(graph, head_wnids, nodes)  # (V, C)
    pred = probs.argmax(axis=1)
    correct = closure[img_node, pred]
    own_mass = (probs * closure[img_node]).sum(axis=1)
    covered_img = closure[img_node].any(axis=1)
    n_nodes, n_heads = len(nodes), probs.shape[1]
    count = np.bincount(img_node, minlength=n_nodes)
    confusions = np.zeros((n_nodes, n_heads), dtype=np.int32)
    np.add.at(confusions, (img_node, pred), 1)
    stats = {
        "nodes": np.array(nodes), "count": count.astype(np.int32),
        "correct": np.bincount(img_node, weights=correct, minlength=n_nodes).astype(np.int32),
        "own_mass": np.bincount(img_node, weights=own_mass, minlength=n_nodes) / np.maximum(count, 1),
        "max_prob": np.bincount(img_node, weights=probs.max(axis=1), minlength=n_nodes)
        / np.maximum(count, 1),
        "covered": closure.any(axis=1), "predictions": confusions,
    }
    detector = fit_domain_detector(probs, covered_img)
    return stats, detector


def vlm_stats(image_emb: np.ndarray, node_text_emb: np.ndarray, image_nodes: Sequence[str],
              text_nodes: Sequence[str], logit_scale: float) -> dict[str, np.ndarray]:
    """Zero-shot counts of a VLM: each image classified among all sample nodes' captions."""
    text_idx = {v: i for i, v in enumerate(text_nodes)}
    truth = np.array([text_idx[v] for v in image_nodes])
    sims = image_emb.astype(np.float32) @ node_text_emb.astype(np.float32).T
    pred = sims.argmax(axis=1)
    n = len(text_nodes)
    count = np.bincount(truth, minlength=n)
    p = softmax(logit_scale * (sims - sims.max(axis=1, keepdims=True)), axis=1)
    return {"nodes": np.array(text_nodes), "count": count.astype(np.int32),
            "correct": np.bincount(truth, weights=pred == truth, minlength=n).astype(np.int32),
            "own_mass": np.bincount(truth, weights=p[np.arange(len(truth)), truth], minlength=n)
            / np.maximum(count, 1),
            "max_prob": np.bincount(truth, weights=p.max(axis=1), minlength=n) / np.maximum(count, 1),
            "covered": count > 0}
