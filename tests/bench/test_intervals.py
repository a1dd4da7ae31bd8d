"""The benchmark's bootstrap intervals: seeded, per-task resampling, equal task weights."""

from __future__ import annotations

import numpy as np

from mll.bench.runner import BOOTSTRAP, mean_interval, paired_bootstrap


def _tasks(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random(n) < p).astype(float) for n, p in ((120, 0.8), (300, 0.5), (40, 0.9))]


def _by_hand(per_task: list[np.ndarray], seed: int) -> np.ndarray:
    """The interval's meaning written out: images resampled within each task, tasks averaged."""
    rng = np.random.default_rng(seed)
    means = np.zeros(BOOTSTRAP)
    for x in per_task:
        means += x[rng.integers(0, len(x), size=(BOOTSTRAP, len(x)))].mean(axis=1)
    return np.percentile(means / len(per_task), [2.5, 97.5])


def test_mean_interval_is_seeded_and_means_per_task_resampling() -> None:
    tasks = _tasks()
    lo, hi = mean_interval(tasks, seed=3)
    assert (lo, hi) == mean_interval(tasks, seed=3)
    point = np.mean([t.mean() for t in tasks])  # every task weighs the same, whatever its size
    assert lo < point < hi
    ref_lo, ref_hi = _by_hand(tasks, seed=3)
    assert abs(lo - ref_lo) < 0.01 and abs(hi - ref_hi) < 0.01


def test_intervals_collapse_when_nothing_varies() -> None:
    perfect = [np.ones(10, dtype=bool), np.ones(25, dtype=bool)]
    assert mean_interval(perfect, seed=0) == (1.0, 1.0)
    tasks = [t.astype(bool) for t in _tasks()]
    assert paired_bootstrap(tasks, tasks, seed=0) == (0.0, 0.0, 0.0)


def test_paired_interval_brackets_a_real_difference() -> None:
    rng = np.random.default_rng(1)
    b = [rng.random(400) < 0.5 for _ in range(3)]
    a = [x | (rng.random(400) < 0.3) for x in b]  # a is right wherever b is, and more often
    diff, lo, hi = paired_bootstrap(a, b, seed=0)
    assert 0 < lo < diff < hi
