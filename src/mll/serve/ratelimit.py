"""Rate limits of ``mll serve``: a token bucket per principal for the costly routes.

Uploads start a labelling job and solves run models on the sent images, so each principal (its
API token, or its client address when it reads anonymously) gets a bucket per action: ``burst``
requests at once, refilled at ``per_minute``. A request finding the bucket empty is answered 429
with ``Retry-After`` (whole seconds until a request would pass) and a one-line JSON detail.

A route opts in with one dependency, declared after its role's: ``Depends(limit("upload"))``.
The limiter keeps its buckets in memory, per server process; idle buckets (full again) are
dropped, so the table stays small whatever the number of clients.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from fastapi import HTTPException, Request

from ..errors import InvalidParameterError
from .settings import ServeSettings, check_rate

#: Actions that have a limit, and what a refusal calls them.
ACTIONS = {"upload": "uploads", "solve": "solves"}
#: Buckets kept before full (idle) ones are dropped.
PRUNE_ABOVE = 10_000


class RateLimiter:
    """Token buckets by key: ``burst`` requests at once, refilled at ``per_minute``.

    ``per_minute == 0`` means no limit. ``clock`` (seconds, monotonic) is injectable so tests
    need no sleeping. Thread-safe: the routes run in a thread pool.
    """

    def __init__(self, per_minute: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        check_rate(per_minute, burst, "RateLimiter ")
        self.per_minute, self.burst, self.clock = float(per_minute), burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, key: str) -> float:
        """Spend one request of ``key``'s bucket: 0.0 when allowed, else seconds to wait."""
        if not self.enabled:
            return 0.0
        rate = self.per_minute / 60.0
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - at) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > PRUNE_ABOVE:
                    self._prune(now, rate)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate

    def _prune(self, now: float, rate: float) -> None:
        """Drop buckets that have refilled: forgetting them changes no answer."""
        self._buckets = {k: (t, at) for k, (t, at) in self._buckets.items()
                         if t + (now - at) * rate < self.burst}


def limiters(settings: ServeSettings) -> dict[str, RateLimiter]:
    """One limiter per action, from the server's settings."""
    return {"upload": RateLimiter(settings.upload_per_minute, settings.upload_burst),
            "solve": RateLimiter(settings.solve_per_minute, settings.solve_burst)}


def principal(request: Request) -> str:
    """Whose bucket a request spends: the token its role dependency accepted
    (``request.state.token``), else the web UI login it came with (a token login shares the
    token's bucket), else its client address (an anonymous read of a public hub)."""
    token = getattr(request.state, "token", None)
    if token is not None:
        return f"token:{token.id}"
    session = request.scope.get("ui_session")  # set by mll.serve.ui.routes.session_of
    if session is not None:
        return f"{session.kind}:{session.subject}"
    return f"address:{request.client.host if request.client else 'unknown'}"


def limit(action: str):
    """A route dependency spending one request of ``action``'s limit for the caller (429 when
    spent, with Retry-After).

    Declare it after the route's role dependency (FastAPI resolves them in order): a request
    refused for its token then spends nothing, and nobody can drain another's bucket by sending
    their token id with a wrong secret.
    """
    if action not in ACTIONS:
        raise InvalidParameterError(f"rate-limited action must be one of {sorted(ACTIONS)}, "
                                    f"got {action!r}")

    def check(request: Request) -> None:
        limiter: RateLimiter = request.app.state.limiters[action]
        wait = limiter.take(principal(request))
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise HTTPException(
                429, f"too many {ACTIONS[action]}: at most {limiter.per_minute:g} a minute "
                     f"(bursts of {limiter.burst}); try again in {seconds} s",
                headers={"Retry-After": str(seconds)})
    return check
