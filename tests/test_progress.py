"""Progress output and step timing: visible in logs and pipes, silent when asked, never in stdout."""

from __future__ import annotations

import threading
import time

import pytest

from mll._io import StepTimer, format_seconds, progress, progress_mode


@pytest.fixture(autouse=True)
def _progress_on(monkeypatch):
    monkeypatch.delenv("MLL_NO_PROGRESS", raising=False)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("[mll] ")]


def test_plain_lines_when_stderr_is_not_a_terminal(capsys):
    assert list(progress(range(50), "counting", interval=60, grace=0)) == list(range(50))
    out = capsys.readouterr()
    assert out.out == ""  # stdout stays clean for --json
    got = lines(out.err)
    assert got[0] == "[mll] counting: started (50 to do)"
    assert got[-1].startswith("[mll] counting: done, 50 in ")
    assert len(got) == 2  # fast items: no line between start and end


def test_a_short_run_prints_nothing_and_a_longer_one_starts_after_the_grace(capsys):
    assert list(progress(range(1000), "quick")) == list(range(1000))
    assert capsys.readouterr().err == ""

    def slow():
        yield 1
        time.sleep(0.5)
        yield 2

    assert list(progress(slow(), "later", total=2, interval=60, grace=0.1)) == [1, 2]
    got = lines(capsys.readouterr().err)
    assert got[0] == "[mll] later: started (2 to do)" and got[-1].startswith("[mll] later: done, 2")
    assert len(got) == 2


def test_a_slow_item_still_shows_progress(capsys):
    def slow():
        yield 1
        time.sleep(0.6)  # one item longer than several intervals
        yield 2

    assert list(progress(slow(), "waiting", total=2, interval=0.1, grace=0)) == [1, 2]
    got = lines(capsys.readouterr().err)
    middle = got[1:-1]
    assert middle, got
    assert all(line.startswith("[mll] waiting: 1/2 (50%), ") and "elapsed" in line
               for line in middle)
    assert "about" in middle[0] and "left" in middle[0]


def test_weight_counts_units_inside_items(capsys):
    batches = [["a", "b", "c"], ["d", "e"], ["f", "g"]]
    assert list(progress(batches, "embedding 7 texts", total=7, weight=len, grace=0)) == batches
    assert lines(capsys.readouterr().err)[-1].startswith("[mll] embedding 7 texts: done, 7 in ")


def test_an_error_ends_with_what_was_done(capsys):
    with pytest.raises(RuntimeError):
        for i in progress(range(10), "failing", grace=0):
            if i == 3:
                raise RuntimeError("boom")
    assert lines(capsys.readouterr().err)[-1].startswith("[mll] failing: stopped after 3 in ")


def test_silenced_by_env_and_by_disable(capsys, monkeypatch):
    assert list(progress(range(3), "quiet", disable=True)) == [0, 1, 2]
    monkeypatch.setenv("MLL_NO_PROGRESS", "1")
    assert progress_mode() == "off"
    assert list(progress(range(3), "quiet")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    assert list(progress(range(3), "forced", disable=False, grace=0)) == [0, 1, 2]
    assert lines(capsys.readouterr().err)[0] == "[mll] forced: started (3 to do)"


def test_bar_only_for_the_main_thread_on_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert progress_mode() == "bar"
    seen = []
    worker = threading.Thread(target=lambda: seen.append(progress_mode()))
    worker.start()
    worker.join()
    assert seen == ["lines"]  # a second live bar would fight the main thread's


def test_step_timer_breakdown(capsys):
    timer = StepTimer("build")
    with timer.step("graph"):
        pass
    with timer.step("corpus"):
        time.sleep(0.05)
    with timer.step("graph"):
        pass
    assert list(timer.seconds) == ["graph", "corpus"]  # order of first run; repeats add up
    assert timer.seconds["corpus"] >= 0.05
    assert timer.total == pytest.approx(sum(timer.seconds.values()), abs=0.02)
    assert timer.breakdown().startswith("graph 0.0s, corpus 0.")
    doc = timer.to_dict()
    assert set(doc) == {"seconds", "cpu_seconds", "total_seconds"}
    assert set(doc["cpu_seconds"]) == {"graph", "corpus"}
    got = lines(capsys.readouterr().err)
    assert got[:2] == ["[mll] build: graph ...", "[mll] build: graph took 0.0s"]
    assert len(got) == 6


def test_step_timer_records_a_failing_step():
    timer = StepTimer("build", announce=False)
    with pytest.raises(ValueError), timer.step("bad"):
        raise ValueError("x")
    assert "bad" in timer.seconds


@pytest.mark.parametrize(("seconds", "text"), [(0.04, "0.0s"), (8.25, "8.2s"), (65, "1m05s"),
                                               (3725, "1h02m")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
