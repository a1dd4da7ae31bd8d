"""How selected models are combined: components and the one combination rule.

A *plan* is a list of components, each turning one model's raw output (expert probabilities, VLM
image embeddings, backbone features) into a probability over the task's classes. Selection scores
plans on cached label outputs of the sample images; the reuse stage runs the same plan on new
images. Both call :func:`combine`, so what is estimated is exactly what is run.

Combination (CHCO's rule): ``p(y|x) ∝ w_G p_G(y|x) + Σ_m w_m g_m(x) q_m(y|x)``. ``p_G`` is the
general component(s) over every class (the VLM patch or the prototype classifier); each expert
answers only the classes its heads cover, ``q_m`` renormalised over them, and is trusted on an
image in proportion to ``g_m(x) = p_G(Y_m|x)``, the general model's belief that the image belongs
to the expert's classes (routing through the general model instead of the expert's own max
softmax, which is confidently wrong outside its domain).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import softmax


def entropy_weight(p: np.ndarray) -> np.ndarray:
    """P2's reuse weight: 1 / entropy in bits (confident rows weigh more)."""
    h = -(p * np.log2(np.clip(p, 1e-12, 1))).sum(axis=1)
    return 1.0 / np.maximum(h, 1e-3)


@dataclass
class Component:
    """One model's contribution. ``source`` names the output it needs (a model id or backbone)."""

    kind: str  # "expert" | "vlm" | "proto"
    source: str
    weight: float = 1.0
    role: str = "general"  # "general" (answers every class) | "expert" (answers ``classes``)
    classes: list[int] = field(default_factory=list)  # task class indices this component answers
    head_map: np.ndarray | None = None  # (heads, K) 0/1: which heads vote for which class
    text_emb: np.ndarray | None = None  # (K, D) class text embeddings for a VLM
    prototypes: np.ndarray | None = None  # (K, D) normalised class means for proto
    scale: float = 100.0  # logit scale of a VLM or proto similarity

    def proba(self, output: np.ndarray) -> np.ndarray:
        """(N, K) probabilities over the task classes (zero outside ``classes`` for experts)."""
        if self.kind == "expert":  # only the heads and classes the map joins are multiplied
            heads = np.flatnonzero(self.head_map.any(axis=1))
            cols = np.flatnonzero(self.head_map.any(axis=0))
            out = np.asarray(output, dtype=np.float32)
            mass = np.zeros((len(out), self.head_map.shape[1]), dtype=np.float32)  # (N, K)
            mass[:, cols] = out[:, heads] @ self.head_map[np.ix_(heads, cols)]
            total = mass.sum(axis=1, keepdims=True)
            return np.where(total > 0, mass / np.maximum(total, 1e-12), 0.0)
        ref = self.text_emb if self.kind == "vlm" else self.prototypes
        out = np.asarray(output, dtype=np.float32)
        out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        p = softmax(self.scale * (out @ ref.T.astype(np.float32)), axis=1)
        if self.role == "expert" and self.classes:
            mask = np.zeros(p.shape[1], dtype=np.float32)
            mask[self.classes] = 1
            p = p * mask
            p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
        return p


@dataclass
class Plan:
    """Components plus the rule that combines them."""

    components: list[Component]
    rule: str = "gated"  # "gated" (CHCO) | "entropy" (P2) | "mean" (all)
    n_classes: int = 0

    def sources(self) -> list[str]:
        return sorted({c.source for c in self.components})


def combine(plan: Plan, probas: list[np.ndarray]) -> np.ndarray:
    """(N, K) combined probabilities from each component's (N, K) probabilities."""
    n = probas[0].shape[0]
    k = plan.n_classes
    if plan.rule == "mean":
        total = sum(p for p in probas)
        return total / np.maximum(total.sum(axis=1, keepdims=True), 1e-12)
    if plan.rule == "entropy":
        total = np.zeros((n, k))
        for p in probas:
            total += entropy_weight(p)[:, None] * p
        return total / np.maximum(total.sum(axis=1, keepdims=True), 1e-12)
    general = [(c, p) for c, p in zip(plan.components, probas, strict=True) if c.role == "general"]
    experts = [(c, p) for c, p in zip(plan.components, probas, strict=True) if c.role == "expert"]
    if general:
        wsum = sum(c.weight for c, _ in general)
        p_g = sum(c.weight * p for c, p in general) / wsum
    else:
        p_g = np.full((n, k), 1.0 / k)
    total = p_g * sum(c.weight for c, _ in general) if general else p_g.copy()
    for c, q in experts:
        gate = p_g[:, c.classes].sum(axis=1, keepdims=True)
        total = total + c.weight * gate * q
    return total / np.maximum(total.sum(axis=1, keepdims=True), 1e-12)
