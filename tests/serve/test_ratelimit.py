"""Rate limits: the token bucket on an injected clock, threads racing for one bucket, and the
429 of an upload route (on an empty hub)."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("fastapi", reason="mll serve needs mll[serve]")
pytest.importorskip("python_multipart", reason="uploads need python-multipart (mll[serve])")

from fastapi.testclient import TestClient  # noqa: E402

from mll.errors import InvalidParameterError  # noqa: E402
from mll.serve import ServeSettings, create_app  # noqa: E402
from mll.serve.ratelimit import RateLimiter, limit  # noqa: E402


class Clock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    clock = Clock()
    bucket = RateLimiter(per_minute=6, burst=3, clock=clock)  # one request every 10 s
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a") == pytest.approx(10.0)
    assert bucket.take("b") == 0.0  # another principal has its own bucket
    clock.now += 4.0
    assert bucket.take("a") == pytest.approx(6.0)  # a refused request spends nothing
    clock.now += 6.0
    assert bucket.take("a") == 0.0
    assert bucket.take("a") == pytest.approx(10.0)
    clock.now += 3600.0  # refills up to the burst, no further
    assert [bucket.take("a") for _ in range(4)][-1] == pytest.approx(10.0)


def test_no_limit_and_bad_settings():
    assert all(RateLimiter(0, 1).take("a") == 0.0 for _ in range(1000))
    for per_minute, burst in ((-1, 1), (float("nan"), 1), (True, 1), (1, 0), (1, 1.5)):
        with pytest.raises(InvalidParameterError, match="per_minute|burst"):
            RateLimiter(per_minute, burst)
    with pytest.raises(InvalidParameterError, match="ServeSettings.upload_burst"):
        ServeSettings(upload_burst=0)
    with pytest.raises(InvalidParameterError, match="rate-limited action"):
        limit("download")


def test_threads_racing_for_one_bucket_get_exactly_its_burst():
    bucket = RateLimiter(per_minute=1e-6, burst=50, clock=Clock())  # no refill during the test
    allowed = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(100):
            if bucket.take("shared") == 0.0:
                with lock:
                    allowed.append(1)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 50


def test_idle_buckets_are_forgotten(monkeypatch):
    from mll.serve import ratelimit

    monkeypatch.setattr(ratelimit, "PRUNE_ABOVE", 10)
    clock = Clock()
    bucket = RateLimiter(per_minute=60, burst=2, clock=clock)
    for i in range(10):
        bucket.take(f"client {i}")
    clock.now += 5.0  # all full again
    bucket.take("busy")
    bucket.take("new")
    assert set(bucket._buckets) == {"busy", "new"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _upload(client, token: str):
    return client.post("/api/models", headers=_bearer(token),
                       files={"weights": ("model.pt", b"\x80\x04"), "classes": ("c.txt", b"a\nb\n")})


def test_uploads_over_the_limit_are_answered_429_per_token(empty_hub, tokens):
    clock = Clock()
    app = create_app(empty_hub, settings=ServeSettings(upload_per_minute=2, upload_burst=2))
    app.state.limiters["upload"] = RateLimiter(2, 2, clock=clock)
    client = TestClient(app)
    first = [_upload(client, tokens["uploader"]).status_code for _ in range(2)]
    assert first == [400, 400]  # served (a pickle, refused by its checks)
    over = _upload(client, tokens["uploader"])
    assert over.status_code == 429
    assert over.headers["retry-after"] == "30"
    assert over.json()["detail"] == ("too many uploads: at most 2 a minute (bursts of 2); try "
                                     "again in 30 s")
    assert _upload(client, tokens["admin"]).status_code == 400  # another token, its own bucket
    clock.now += 30.0
    assert _upload(client, tokens["uploader"]).status_code == 400
    # refused for its token or role before the limit is consulted: spends nothing
    for token in (tokens["reader"], tokens["revoked"], "mll_nothing"):
        assert _upload(client, token).status_code in (401, 403)
    ids = {t.split("_")[1] for t in (tokens["uploader"], tokens["admin"])}
    assert set(app.state.limiters["upload"]._buckets) == {f"token:{i}" for i in ids}
