"""Cancelling jobs: the queue's states (SQLite and PostgreSQL), who may cancel over HTTP (on an
empty hub), and a running upload stopped mid-labelling on a private copy of the quick starter
hub, leaving nothing of itself."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import update

from mll.serve.jobs import JobQueue, JobRow

CLASSES = b"sandal\nsneaker\nankle boot\n"


def _expire(store, job_id: str) -> None:
    from datetime import UTC, datetime, timedelta

    with store.write() as s:
        s.execute(update(JobRow).where(JobRow.id == job_id).values(
            lease_until=datetime.now(UTC) - timedelta(seconds=1)))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _wait(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_queued_jobs_cancel_at_once_running_ones_at_their_workers_next_step(store):
    queue = JobQueue(store)
    waiting, working, ended = (queue.submit("upload", {"n": i}) for i in range(3))
    assert queue.claim("w1", lease=60).id == waiting.id  # the oldest; put it back in order:
    assert queue.finish(waiting.id, "w1", message="done")
    working_claim = queue.claim("w2", lease=60)
    assert working_claim.id == working.id
    queued = queue.submit("upload", {"n": 9})

    now = queue.cancel(queued.id)
    assert (now.state, now.phase, now.finished_at is not None) == ("cancelled", "cancelled", True)
    assert queue.claim("w3", lease=60).id == ended.id  # the cancelled job is never claimed
    assert queue.claim("w4", lease=60) is None

    asked = queue.cancel(working.id)
    assert asked.state == "cancelling" and asked.finished_at is None
    assert queue.cancelled(working.id, "w2") and not queue.cancelled(working.id, "w3")
    assert not queue.renew(working.id, "w2")  # its worker learns at its next renewal
    assert not queue.finish(working.id, "w2", model_id="x")  # and cannot finish it as done
    assert queue.cancel(working.id).state == "cancelling"  # asking twice changes nothing
    assert not queue.end_cancelled(working.id, "w3", "not mine")
    assert queue.end_cancelled(working.id, "w2", "cancelled while it was being labelled")
    assert queue.get(working.id).state == "cancelled"
    assert queue.cancel(waiting.id).state == "done"  # an ended job is left as it is


def test_a_cancelling_job_whose_worker_died_is_ended_by_the_next_worker(store):
    queue = JobQueue(store)
    job = queue.submit("upload", {})
    queue.claim("dead", lease=60)
    queue.cancel(job.id)
    assert queue.orphaned_cancel() is None  # its worker may still stop it
    _expire(store, job.id)
    assert queue.orphaned_cancel().id == job.id
    assert queue.end_cancelled(job.id, None, "cancelled (its worker had stopped)")
    assert queue.get(job.id).state == "cancelled" and queue.orphaned_cancel() is None


def _safetensors() -> bytes:
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}    '
    return len(header).to_bytes(8, "little") + header + b"\0\0\0\0"


def test_who_may_cancel_and_what_a_queued_cancel_leaves(empty_hub, tokens):
    from fastapi.testclient import TestClient

    from mll.hub import Hub
    from mll.serve import ServeSettings, create_app
    from mll.serve.tokens import TokenStore

    with Hub.open(empty_hub, create=False) as hub:
        other = TokenStore(hub.store).create("uploader", "someone else")[1]
    client = TestClient(create_app(empty_hub, settings=ServeSettings(upload_per_minute=0)))

    def upload() -> str:
        answer = client.post("/api/models", headers=_bearer(tokens["uploader"]),
                             files={"weights": ("m.safetensors", _safetensors()),
                                    "classes": ("c.txt", CLASSES)})
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    mine, by_admin = upload(), upload()
    assert (empty_hub / "uploads" / mine).is_dir()
    assert client.delete(f"/api/jobs/{mine}").status_code == 401
    assert client.delete(f"/api/jobs/{mine}", headers=_bearer(tokens["reader"])).status_code == 403
    refused = client.delete(f"/api/jobs/{mine}", headers=_bearer(other))
    assert refused.status_code == 403 and "uploader or an admin" in refused.json()["detail"]
    assert client.delete(f"/api/jobs/{'0' * 32}", headers=_bearer(other)).status_code == 404
    answer = client.delete(f"/api/jobs/{mine}", headers=_bearer(tokens["uploader"]))
    assert answer.status_code == 200 and answer.json()["state"] == "cancelled"
    assert not (empty_hub / "uploads" / mine).exists()  # the staged upload is gone at once
    again = client.delete(f"/api/jobs/{mine}", headers=_bearer(tokens["uploader"]))
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    assert client.delete(f"/api/jobs/{by_admin}",
                         headers=_bearer(tokens["admin"])).json()["state"] == "cancelled"
    listed = client.get("/api/jobs?state=cancelled", headers=_bearer(tokens["uploader"]))
    assert {j["id"] for j in listed.json()["jobs"]} == {mine, by_admin}
    with Hub.open(empty_hub, create=False) as hub:  # a job that ended cannot be cancelled
        queue = JobQueue(hub.store)
        done = upload()
        queue.claim("w", lease=60)
        queue.finish(done, "w", model_id="m")
    ended = client.delete(f"/api/jobs/{done}", headers=_bearer(tokens["uploader"]))
    assert ended.status_code == 409 and "already ended (done)" in ended.json()["detail"]


@pytest.mark.slow
def test_a_running_upload_cancelled_mid_labelling_leaves_nothing(upload_hub, upload_tokens, tiny_onnx):
    from fastapi.testclient import TestClient

    from mll.hub import Hub
    from mll.serve import create_app
    from mll.serve.worker import Worker

    tokens = upload_tokens
    client = TestClient(create_app(upload_hub))
    reader = _bearer(tokens["reader"])
    models_before = client.get("/api/models", headers=reader).json()["models"]
    labels_before = sorted(p.name for p in (upload_hub / "labels").iterdir())
    job_id = client.post("/api/models", headers=_bearer(tokens["uploader"]),
                         files={"weights": ("tiny.onnx", tiny_onnx),
                                "classes": ("c.txt", CLASSES)}).json()["id"]
    worker = Worker(upload_hub, lease=30, batch=16)
    ran: list = []
    thread = threading.Thread(target=lambda: ran.append(worker.run_once()))
    thread.start()
    try:
        with Hub.open(upload_hub, create=False) as hub:
            queue = JobQueue(hub.store)
            _wait(lambda: queue.get(job_id).phase == "labelling"
                  and any(upload_hub.glob("labels/*/shards/*.npz")), 120, "the first shards")
        answer = client.delete(f"/api/jobs/{job_id}", headers=_bearer(tokens["uploader"]))
        assert answer.status_code == 202 and answer.json()["state"] == "cancelling"
        asked = time.monotonic()
        thread.join(60)
        stopped_in = time.monotonic() - asked
    finally:
        thread.join()
        worker.close()
    job = client.get(f"/api/jobs/{job_id}", headers=reader).json()
    assert ran[0].id == job_id and job["state"] == job["phase"] == "cancelled", job["message"]
    assert "nothing of the upload was kept" in job["message"] and stopped_in < 20
    assert client.get("/api/models", headers=reader).json()["models"] == models_before
    assert sorted(p.name for p in (upload_hub / "labels").iterdir()) == labels_before
    assert not (upload_hub / "uploads" / job_id).exists()
    assert job["model_id"] not in client.app.state.service.labels().models
    assert client.delete(f"/api/jobs/{job_id}",
                         headers=_bearer(tokens["uploader"])).json()["state"] == "cancelled"
