"""Predicted accuracy you can plan with: a calibrated value and a 90% interval per class and task.

The proxy task's accuracy is an estimate on the hub's sample images, not on the user's. How far it
lands from the accuracy measured on new images was measured on *proxy tasks built from the
sample role* (``benchmarks/calibrate_intervals.py``): concepts' images of one style are hidden
from the labels, selection runs as for a user, and the plan is measured on the hidden images. No
benchmark (eval) image is read. From those (predicted, measured) pairs, per method, per level
(class or task) and per *situation*, this module keeps:

- a shrinkage of the proxy accuracy towards a prior ``a``, by ``k`` pseudo-images against the
  proxy's effective sample images per class (an estimate on two images moves far, one on fifty
  hardly; kept only where it lowered the squared error on held-out proxy tasks);
- ``tau``, the spread of the true accuracy around the calibrated value: the residuals' variance
  less the binomial noise of the few hidden images each was measured on (a proxy task's class
  holds one to five of them, so raw residuals would say little beyond "somewhere in [0, 1]");
- split-conformal 5% and 95% quantiles (``low``, ``high``) of the residuals divided by their
  expected spread ``sqrt(tau^2 + p(1 - p) / images)``.

The interval shown is ``calibrated + [low, high] * tau``: where the accuracy on many new images
should lie. :meth:`Rule.measured_interval` adds the binomial noise of a given number of images;
the benchmark checks per-class coverage with it, since its classes hold 2-100 images each.

Situations: ``carried`` (the target's style group has no sample image under the class, so its
accuracy was carried over from other styles), ``direct`` (the domain words name a style group the
class's sample images hold) and ``nodomain`` (no domain words). A task is ``carried`` when any of
its classes is. A method or situation without fitted figures takes the figures pooled over
methods (``*``) or over situations (``any``); ``borrowed`` classes (no sample image at all: the
estimate comes from related concepts, :meth:`StyleCounts.borrowed`) have no proxy tasks of their
own and take ``any``.

Calibration is a property of a hub: how far a proxy estimate lands from new images depends on the
hub's models and sample images (the quick hub's rules, applied to the full hub, pulled chco's
estimates towards the quick hub's weaker plans). ``mll calibrate --hub H`` fits the rules on that
hub's own proxy tasks and stores them in ``H/calibration.json`` with the models they were fitted
for; :func:`rules_for` uses them while the hub's labelled models are those, the shipped file
(fitted on the quick starter hub) otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

LEVEL = 0.9  # two-sided coverage the intervals are fitted for
HUB_FILE = "calibration.json"  # a hub's own fitted rules, beside its database
SITUATIONS = ("direct", "carried", "nodomain")
SHRINK_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)  # pseudo-image counts tried
MIN_GAIN = 0.02  # a shrinkage is kept only if it lowers the held-out squared error by 2%


@dataclass(frozen=True)
class Rule:
    """One fitted calibration: ``calibrated = a + (proxy - a) * e / (e + k)`` for a proxy estimate
    resting on ``e`` effective sample images per class; the true accuracy lies within
    ``calibrated + [low, high] * tau`` (``tau``: the spread of the true accuracy around the
    calibrated value; ``low``/``high``: conformal quantiles of normalised residuals)."""

    a: float = 0.0  # what a proxy estimate without evidence is shrunk towards
    k: float = 0.0  # pseudo-images of that prior (0: no shrinkage)
    tau: float = 1.0
    low: float = -1.0
    high: float = 1.0
    n: int = 0  # proxy tasks (task level) or classes (class level) behind it

    def value(self, proxy: float, evidence: float) -> float:
        keep = evidence / (evidence + self.k) if self.k > 0 else 1.0
        return min(1.0, max(0.0, self.a + (proxy - self.a) * keep))

    def apply(self, proxy: float, evidence: float) -> tuple[float, tuple[float, float]]:
        """The calibrated accuracy and the 90% interval of the accuracy on new images."""
        value = self.value(proxy, evidence)
        return round(value, 4), self._around(value, self.tau)

    def measured_interval(self, proxy: float, evidence: float, images: int
                          ) -> tuple[float, float]:
        """Where the accuracy *measured on* ``images`` images falls (adds their binomial noise)."""
        value = self.value(proxy, evidence)
        return self._around(value, math.sqrt(self.tau ** 2 + value * (1 - value) / max(images, 1)))

    def _around(self, value: float, scale: float) -> tuple[float, float]:
        return (round(max(0.0, value + self.low * scale), 4),
                round(min(1.0, value + self.high * scale), 4))


@cache
def fitted() -> dict:
    """The fitted figures shipped with the package (``_data/calibration.json``)."""
    text = resources.files(__package__).joinpath("_data", "calibration.json").read_text()
    return json.loads(text)


@cache
def _hub_doc(path: str, mtime_ns: int) -> dict:
    return json.loads(Path(path).read_text())


def hub_rules(hub_dir: Path | None) -> dict | None:
    """The rules ``mll calibrate`` stored in a hub (None: none stored, or unreadable)."""
    if hub_dir is None:
        return None
    path = Path(hub_dir) / HUB_FILE
    try:
        return _hub_doc(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError):
        return None


def rules_for(table) -> dict:
    """The calibration a selection on ``table`` uses: the hub's own, fitted while it held the
    same labelled models, else the shipped one."""
    doc = hub_rules(getattr(table, "hub_dir", None))
    if doc is not None and sorted(doc.get("models", [])) == sorted(table.models):
        return doc
    return fitted()


def rule(method: str, level: str, situation: str, doc: dict | None = None) -> Rule:
    """The rule for a method's ``class`` or ``task`` predictions in a situation, from ``doc`` (a
    calibration document; the shipped one by default). A method ``doc`` has no figures for takes
    the shipped file's, then the figures pooled over methods; a situation without figures, or
    with too few proxy tasks to bound an interval, takes those pooled over situations
    (``any``)."""
    docs = [d for d in (doc, fitted()) if d is not None]
    for m in (method, "*"):
        for d in docs:
            by_situation = d.get("rules", {}).get(m, {}).get(level, {})
            for s in (situation, "any"):
                found = by_situation.get(s)
                # fitted on too few proxy tasks for its quantiles: the pooled figures say more
                if found and -OPEN < found["low"] and found["high"] < OPEN:
                    return Rule(**found)
    return Rule()


def situation(target_style: str | None, carried: bool) -> str:
    if target_style is None:
        return "nodomain"
    return "carried" if carried else "direct"


# -- fitting (benchmarks/calibrate_intervals.py collects the records) --------------------------

OPEN = 100.0  # a normalised bound that leaves the interval open (too few records)
MIN_TAU = 0.02
TAU_BOOTSTRAP = 200  # resamples of the proxy tasks behind tau's upper estimate
TAU_QUANTILE = 0.9  # the bootstrap quantile of tau kept (set, not fitted)


def _quantiles(scores: np.ndarray) -> tuple[float, float]:
    """Split-conformal lower and upper bounds of the scores for two-sided ``LEVEL`` coverage."""
    n = len(scores)
    tail = (1 - LEVEL) / 2
    r = np.sort(scores)
    lo_rank, hi_rank = math.floor(tail * (n + 1)), math.ceil((1 - tail) * (n + 1))
    low = float(r[lo_rank - 1]) if lo_rank >= 1 else -OPEN
    high = float(r[hi_rank - 1]) if hi_rank <= n else OPEN
    return low, high


def _keep(evidence: np.ndarray, k: float | None) -> np.ndarray:
    return np.ones(len(evidence)) if not k else evidence / (evidence + k)


def _prior(proxy: np.ndarray, measured: np.ndarray, keep: np.ndarray) -> float:
    """The least-squares ``a`` of ``measured ~ a (1 - keep) + proxy keep``."""
    gone = 1 - keep
    return float((gone * (measured - proxy * keep)).sum() / max((gone ** 2).sum(), 1e-12))


def _tau(resid: np.ndarray, noise: np.ndarray, images: np.ndarray, tasks: np.ndarray | None
         ) -> float:
    """The true accuracy's spread around the calibrated value, by moments:
    E[resid^2] = tau^2 + E[theta (1 - theta) / n] = tau^2 (1 - E[1/n]) + E[value (1 - value) / n]
    (a class measured on one image says nothing about tau: right or wrong, whatever theta is).
    Records on few images make this estimate noisy, so the ``TAU_QUANTILE`` of its bootstrap
    over proxy tasks is taken (``tasks`` None: the point estimate)."""
    def moment(idx: np.ndarray) -> float:
        spread = max(float(np.mean(1 - 1 / images[idx])), 1e-3)
        return max(MIN_TAU ** 2, float(np.mean(resid[idx] ** 2) - np.mean(noise[idx])) / spread)

    if tasks is None:
        return math.sqrt(moment(np.arange(len(resid))))
    names, of = np.unique(tasks, return_inverse=True)
    rows = [np.flatnonzero(of == i) for i in range(len(names))]
    rng = np.random.default_rng(0)
    draws = [moment(np.concatenate([rows[i] for i in rng.integers(0, len(rows), len(rows))]))
             for _ in range(TAU_BOOTSTRAP)]
    return math.sqrt(float(np.quantile(draws, TAU_QUANTILE)))


def _fit_one(proxy: np.ndarray, measured: np.ndarray, images: np.ndarray, evidence: np.ndarray,
             k: float | None, tasks: np.ndarray | None = None) -> Rule:
    """Shrinkage with ``k`` pseudo-images (None: none) towards the least-squares prior, the true
    accuracy's spread ``tau`` (the residuals' variance less the binomial noise of the images
    measured on; moments, as in a beta-binomial) and conformal quantiles of the residuals
    normalised by their spread."""
    keep = _keep(evidence, k)
    a = _prior(proxy, measured, keep) if k else 0.0
    value = np.clip(a + (proxy - a) * keep, 0.0, 1.0)
    resid = measured - value
    noise = value * (1 - value) / images
    tau = _tau(resid, noise, images, tasks)
    low, high = _quantiles(resid / np.sqrt(tau ** 2 + noise))
    return Rule(round(a, 4), float(k or 0.0), round(tau, 4), round(low, 4), round(high, 4),
                len(proxy))


def fit_rule(proxy: np.ndarray, measured: np.ndarray, images: np.ndarray, evidence: np.ndarray,
             tasks: np.ndarray) -> tuple[Rule, dict]:
    """The rule for one (method, level, situation) and its held-out-task figures: each proxy task
    is predicted by the rule fitted on the others (error, and whether the measured accuracy falls
    in the interval for the images it was measured on). The shrinkage's ``k`` is the one with the
    lowest held-out squared error (squared, not absolute: a class's accuracy measured on one to
    five images is mostly 0 or 1, and absolute error would pull predictions towards those ends),
    kept only if it beats no shrinkage by ``MIN_GAIN``."""
    folds = np.unique(tasks)

    def held_out(k: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        err, sq, cov = np.zeros(len(proxy)), np.zeros(len(proxy)), np.zeros(len(proxy), bool)
        for t in folds:
            test, train = tasks == t, tasks != t
            r = _fit_one(proxy[train], measured[train], images[train], evidence[train], k)
            for i in np.flatnonzero(test):
                value = r.value(float(proxy[i]), float(evidence[i]))
                lo, hi = r.measured_interval(float(proxy[i]), float(evidence[i]), int(images[i]))
                err[i], sq[i] = abs(measured[i] - value), (measured[i] - value) ** 2
                cov[i] = lo - 1e-9 <= measured[i] <= hi + 1e-9
        return err, sq, cov

    runs = {None: held_out(None)}
    if len(folds) >= 4:
        runs |= {k: held_out(k) for k in SHRINK_GRID}
    best = min(runs, key=lambda k: runs[k][1].mean())
    if best is not None and runs[best][1].mean() > (1 - MIN_GAIN) * runs[None][1].mean():
        best = None
    rule = _fit_one(proxy, measured, images, evidence, best, tasks)
    err, _, cov = runs[best]
    check = {"n": len(proxy), "tasks": len(folds), "raw_mae": round(float(runs[None][0].mean()), 4),
             "calibrated_mae_heldout": round(float(err.mean()), 4),
             "coverage_heldout": round(float(cov.mean()), 4), "a": rule.a, "k": rule.k,
             "tau": rule.tau, "width": round((rule.high - rule.low) * rule.tau, 4)}
    return rule, check


def fit(records: list[dict]) -> tuple[dict, dict]:
    """Rules and held-out checks per method (and ``*``), level and situation (and ``any``) from
    records ``{task, method, level, situation, proxy, evidence, measured, images}``."""
    rules: dict = {}
    checks: dict = {}
    methods = sorted({r["method"] for r in records}) + ["*"]
    for m in methods:
        for level in ("task", "class"):
            for where in (*SITUATIONS, "any"):
                sel = [r for r in records if (m == "*" or r["method"] == m) and r["level"] == level
                       and (where == "any" or r["situation"] == where)]
                if len({r["task"] for r in sel}) < 2:
                    continue
                proxy = np.array([r["proxy"] for r in sel])
                measured = np.array([r["measured"] for r in sel])
                images = np.array([r["images"] for r in sel])
                evidence = np.array([max(r["evidence"], 1e-6) for r in sel])
                tasks = np.array([r["task"] for r in sel])
                rule, check = fit_rule(proxy, measured, images, evidence, tasks)
                rules.setdefault(m, {}).setdefault(level, {})[where] = dict(rule.__dict__)
                checks.setdefault(m, {}).setdefault(level, {})[where] = check
    return rules, checks
