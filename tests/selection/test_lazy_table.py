"""The lazy label table: labels read on first use, LRU-bounded, safe across threads; chco reads
only the candidates the index names."""

from __future__ import annotations

import threading

import pytest

from mll.selection.table import LabelCache


def _cache(n: int, capacity: int):
    loads: list[list[str]] = []

    def load(ids):
        loads.append(list(ids))
        return {i: f"label of {i}" for i in ids}

    kinds = {f"m{i}": ("vlm" if i == 0 else "expert") for i in range(n)}
    return LabelCache(kinds, load, capacity), loads


def test_labels_are_read_on_first_use_and_bounded():
    cache, loads = _cache(10, capacity=3)
    assert len(cache) == 10 and list(cache)[:2] == ["m0", "m1"] and loads == []
    assert cache["m4"] == "label of m4" and cache["m4"] == "label of m4"
    assert loads == [["m4"]] and cache.reads == 1
    cache.many(["m1", "m2", "m3"])  # m4 is the least recently used: out
    cache["m4"]
    assert cache.reads == 5 and len(cache._cache) == 3
    with pytest.raises(KeyError):
        cache["nope"]
    assert "m9" in cache and "nope" not in cache
    assert [v for v in cache.values()][-1] == "label of m9"  # iteration reads in hub order


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_max_labels_must_be_a_positive_whole_number(bad, tmp_path):
    from mll.errors import InvalidParameterError
    from mll.selection import LabelTable

    with pytest.raises(InvalidParameterError, match="max_labels must be a whole number"):
        LabelTable(tmp_path, max_labels=bad)


def test_shared_between_threads():
    cache, _ = _cache(200, capacity=50)
    errors: list[Exception] = []

    def work(seed: int) -> None:
        try:
            for i in range(300):
                key = f"m{(i * 7 + seed) % 200}"
                assert cache[key] == f"label of {key}"
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache._cache) <= 50


@pytest.mark.slow
def test_chco_reads_only_its_candidates_and_chooses_as_with_every_expert(starter_hub):
    from mll.selection import LabelTable, Task, make_selector

    table = LabelTable(starter_hub)
    assert len(table.models) > 10 and table.models.reads == 0  # listed, not read
    task = Task.create(["sandal", "sneaker", "pullover", "trouser"], domain="grayscale photo")
    lazy = make_selector("chco").fit(table).select(task)
    read = table.models.reads
    assert 0 < read < len(table.models)
    every = make_selector("chco", candidates=None).fit(LabelTable(starter_hub)).select(task)
    assert lazy.models == every.models
    assert lazy.predicted_accuracy == pytest.approx(every.predicted_accuracy)
