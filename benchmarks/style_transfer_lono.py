"""How well a model's accuracy on one style predicts its photo accuracy at a node, on the sample role.

Leave-one-node-out: for every model and every sample node with at least two in-domain photos and
two images of another style, predict the node's photo accuracy from its accuracy on the other
style, carried over with the model's style ratio or logit shift measured on every *other* node;
compare with no transfer. This chose the ratio in ``mll.selection.style`` (no benchmark task is
read). Usage: ``python benchmarks/style_transfer_lono.py --hub HUB [--target photo]``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from mll.selection import LabelTable


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return float(np.log(p / (1 - p)))


def lono(table, target: str) -> dict[str, dict[str, float]]:
    from mll.selection.style import StyleCounts

    sc = StyleCounts.of(table)
    t = sc.groups.index(target)
    errs: dict[str, list[float]] = {"ratio": [], "logit": [], "none": []}
    for i in range(len(sc.model_ids)):
        c, n = sc.correct[i], sc.count[i]
        for s in (j for j in range(len(sc.groups)) if j != t):
            for v in np.flatnonzero((n[:, t] >= 2) & (n[:, s] >= 2)):
                rest = np.arange(len(sc.nodes)) != v
                ns, nt = n[rest, s].sum(), n[rest, t].sum()
                if ns < 4 or nt < 4:
                    continue
                acc_s, acc_t = (c[rest, s].sum() + 1) / (ns + 2), (c[rest, t].sum() + 1) / (nt + 2)
                a_s, a_t = c[v, s] / n[v, s], c[v, t] / n[v, t]
                shifted = 1 / (1 + np.exp(-(_logit(a_s) + _logit(acc_t) - _logit(acc_s))))
                errs["ratio"].append(abs(min(1.0, a_s * acc_t / acc_s) - a_t))
                errs["logit"].append(abs(shifted - a_t))
                errs["none"].append(abs(a_s - a_t))
    return {k: {"cells": len(v), "mae": round(float(np.mean(v)), 4)} for k, v in errs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub", required=True)
    ap.add_argument("--target", default="photo")
    args = ap.parse_args()
    print(json.dumps(lono(LabelTable.open(args.hub), args.target), indent=1))


if __name__ == "__main__":
    main()
