"""Small I/O helpers shared by every stage: hashing, atomic writes, progress, step timing."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def writable(path: Path) -> bool:
    """Whether this process may create ``path`` (or write it, if it exists) in its directory."""
    return os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


@contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only if the block succeeds.

    Readers therefore see either the old file or the complete new one, never a partial write.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(dest: Path, obj: Any) -> None:
    atomic_write_bytes(dest, json.dumps(obj, indent=1, sort_keys=True).encode())


PROGRESS_INTERVAL = 10.0  # seconds between plain progress lines: logs show life, not noise
PROGRESS_GRACE = 2.0  # a run shorter than this prints no plain lines at all


def progress_mode() -> str:
    """``"bar"`` on a terminal, ``"lines"`` when stderr is a file or pipe, ``"off"`` with
    ``MLL_NO_PROGRESS=1``.

    A background thread always gets lines: a rich bar needs the terminal to itself, and a line
    written while the main thread's bar is live is printed above it.
    """
    if os.environ.get("MLL_NO_PROGRESS") == "1":
        return "off"
    if not sys.stderr.isatty() or threading.current_thread() is not threading.main_thread():
        return "lines"
    return "bar"


def progress(items: Iterable[T], description: str, total: int | None = None,
             disable: bool | None = None, weight: Callable[[T], int] | None = None,
             interval: float = PROGRESS_INTERVAL, grace: float = PROGRESS_GRACE) -> Iterator[T]:
    """Yield ``items`` while showing progress on stderr.

    On a terminal: a rich bar with ETA. Otherwise (CI, a log file, ``| tee``): plain lines, so a
    long step never looks hung: a start line once the run has lasted ``grace`` seconds (shorter
    runs print nothing), a line at most every ``interval`` seconds (also while one slow item is
    still running), and an end line with the count and elapsed time.
    ``weight(item)`` is how many units an item counts for (texts in a batch of texts).
    ``disable=True`` or ``MLL_NO_PROGRESS=1`` silences both; ``disable=False`` forces output.
    """
    mode = progress_mode()
    if disable:
        mode = "off"
    elif disable is False and mode == "off":
        mode = "lines"
    if total is None and hasattr(items, "__len__"):
        total = len(items) if weight is None else None  # type: ignore[arg-type]
    if mode == "off":
        yield from items
        return
    if mode == "lines":
        with _PlainProgress(description, total, interval, grace) as plain:
            for item in items:
                yield item
                plain.advance(1 if weight is None else weight(item))
        return
    yield from _rich_progress(items, description, total, weight)


def _rich_progress(items: Iterable[T], description: str, total: int | None,
                   weight: Callable[[T], int] | None) -> Iterator[T]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task, 1 if weight is None else weight(item))


def format_seconds(seconds: float) -> str:
    """``8.2s``, ``3m05s`` or ``1h02m``: short enough for a progress line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


class _PlainProgress:
    """Plain progress lines on stderr; a daemon thread reports slow items between advances."""

    def __init__(self, description: str, total: int | None, interval: float,
                 grace: float) -> None:
        self.description, self.total, self.interval, self.grace = (description, total, interval,
                                                                   grace)
        self.done = 0
        self._start = self._last = time.monotonic()
        self._announced = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="mll-progress", daemon=True)

    def __enter__(self) -> _PlainProgress:
        if self.grace <= 0:
            self._report()
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        self._thread.join()
        if not self._announced:
            return  # a short run stays silent
        elapsed = format_seconds(time.monotonic() - self._start)
        if exc_type is None:
            _say(f"{self.description}: done, {self.done} in {elapsed}")
        else:
            _say(f"{self.description}: stopped after {self.done} in {elapsed}")

    def advance(self, n: int) -> None:
        with self._lock:
            self.done += n
        self._report()

    def _tick(self) -> None:
        step = min(self.interval / 4, max(self.grace, 0.05))
        while not self._stop.wait(step):
            self._report()

    def _report(self) -> None:
        """Print the start line once the grace has passed, then a line per interval."""
        with self._lock:
            now = time.monotonic()
            elapsed = now - self._start
            if not self._announced:
                if elapsed < self.grace:
                    return
                self._announced, self._last = True, now
                of = f" ({self.total} to do)" if self.total is not None else ""
                line = f"{self.description}: started{of}"
            elif now - self._last >= self.interval:
                self._last = now
                line = self._status(self.done, elapsed)
            else:
                return
        _say(line)

    def _status(self, done: int, elapsed: float) -> str:
        line = f"{self.description}: {done}"
        if self.total:
            line += f"/{self.total} ({100 * done / self.total:.0f}%)"
        line += f", {format_seconds(elapsed)} elapsed"
        if self.total and 0 < done < self.total:
            line += f", about {format_seconds(elapsed * (self.total - done) / done)} left"
        return line


def _say(line: str) -> None:
    sys.stderr.write(f"[mll] {line}\n")
    sys.stderr.flush()


@dataclass
class StepTimer:
    """Wall-clock and CPU seconds of the named steps of one command, for its closing breakdown.

    CPU seconds (this process and its children) sit beside wall seconds because the machines
    these commands run on are often shared: a slow step with little CPU waited for the others.
    Each step is announced on stderr as it starts and ends, so a log shows where time goes.
    """

    label: str
    announce: bool = True
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as ``name`` (a repeated name adds up)."""
        loud = self.announce and progress_mode() != "off"
        if loud:
            _say(f"{self.label}: {name} ...")
        start, cpu = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            wall = time.perf_counter() - start
            self.seconds[name] = round(self.seconds.get(name, 0.0) + wall, 2)
            self.cpu_seconds[name] = round(self.cpu_seconds.get(name, 0.0) + cpu_seconds() - cpu,
                                           2)
            if loud:
                _say(f"{self.label}: {name} took {format_seconds(wall)}")

    @property
    def total(self) -> float:
        return round(sum(self.seconds.values()), 2)

    def breakdown(self) -> str:
        """One line: ``graph 0.1s, corpus 1m20s, ...`` in the order the steps ran."""
        return ", ".join(f"{k} {format_seconds(v)}" for k, v in self.seconds.items())

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": dict(self.seconds), "cpu_seconds": dict(self.cpu_seconds),
                "total_seconds": self.total}


def cpu_seconds() -> float:
    """User and system CPU seconds of this process and its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
