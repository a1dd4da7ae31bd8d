"""Background jobs: the queue's claims and leases (SQLite and PostgreSQL), and uploads that become
labelled, selectable models, on a private copy of the quick starter hub: through a worker in this
process, a worker killed with SIGKILL mid-job and resumed by another, and a real 'mll serve
--workers 1' process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from mll.serve.jobs import MAX_ATTEMPTS, JobQueue, JobRow

CLASSES = b"sandal\nsneaker\nankle boot\n"


def _expire(store, job_id: str) -> None:
    """Make a running job's lease run out now (as if its worker died a lease ago)."""
    with store.write() as s:
        s.execute(update(JobRow).where(JobRow.id == job_id).values(
            lease_until=datetime.now(UTC) - timedelta(seconds=1)))


# -- the queue -----------------------------------------------------------------------------------
def test_a_job_is_claimed_by_one_worker_until_its_lease_expires(store):
    queue = JobQueue(store)
    first, second = queue.submit("upload", {"n": 1}), queue.submit("upload", {"n": 2})
    a = queue.claim("worker-a", lease=60)
    assert a.id == first.id and a.state == "running" and a.attempts == 1
    assert queue.claim("worker-b", lease=60).id == second.id  # the oldest claimable job
    assert queue.claim("worker-c", lease=60) is None  # both held
    assert queue.renew(first.id, "worker-a", lease=60, phase="labelling", done=3, total=10)
    assert not queue.renew(first.id, "worker-b")  # not b's job
    got = queue.get(first.id)
    assert (got.phase, got.done, got.total) == ("labelling", 3, 10)
    _expire(store, first.id)  # worker-a died
    again = queue.claim("worker-c", lease=60)
    assert again.id == first.id and again.attempts == 2 and again.done == 3
    assert not queue.renew(first.id, "worker-a")  # a's late writes are refused
    assert not queue.finish(first.id, "worker-a", model_id="x")
    assert queue.finish(first.id, "worker-c", model_id="abc", message="labelled")
    done = queue.get(first.id)
    assert (done.state, done.model_id, done.done, done.finished_at is not None) == (
        "done", "abc", 10, True)
    assert queue.finish(second.id, "worker-b", failed=True, message="bad\nmodel")
    assert queue.get(second.id).to_dict()["message"] == "bad model"
    assert [j.state for j in queue.list()] == ["failed", "done"]
    assert queue.claim("worker-d") is None  # finished jobs are never claimed


def test_a_job_whose_workers_keep_dying_fails(store):
    queue = JobQueue(store)
    job = queue.submit("upload", {})
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert queue.claim(f"w{attempt}", lease=60).attempts == attempt
        _expire(store, job.id)
    given_up = []
    assert queue.claim("last", lease=60, on_given_up=given_up.append) is None
    failed = queue.get(job.id)
    assert failed.state == failed.phase == "failed" and "stopped 3 times" in failed.message
    assert [j.id for j in given_up] == [job.id]  # told, to clean up what the job left


def test_unknown_jobs_are_unknown(store):
    from mll.errors import UnknownNameError

    for ref in ("0" * 32, "x" * 5000):
        with pytest.raises(UnknownNameError, match="job"):
            JobQueue(store).get(ref)


def test_concurrent_workers_claim_each_job_exactly_once(store):
    if store.engine.dialect.name == "sqlite" and store.engine.url.database in (None, "",
                                                                             ":memory:"):
        pytest.skip("an in-memory SQLite database is private to one connection")
    queue = JobQueue(store)
    ids = {queue.submit("upload", {"n": i}).id for i in range(24)}
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while (job := queue.claim(name, lease=60)) is not None:
            with lock:
                claimed.append((job.id, name))

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(j for j, _ in claimed) == sorted(ids)  # each once, none lost


@pytest.mark.postgres
def test_uploads_queue_their_jobs_in_a_postgresql_store(pg_hub, pg_url):
    """The hub directory holds the staged upload; the job and its card live on PostgreSQL."""
    from fastapi.testclient import TestClient

    from mll.serve import create_app
    from mll.serve.tokens import TokenStore

    root, hub = pg_hub.root, pg_hub
    token = TokenStore(hub.store).create("uploader", "pg")[1]
    client = TestClient(create_app(root, pg_url))
    answer = client.post("/api/models", headers=_bearer(token),
                         files={"weights": ("w.onnx", b"\x08\x01graph"),
                                "classes": ("c.txt", CLASSES)}, data={"name": "on-pg"})
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert (root / "uploads" / job["id"] / "model.onnx").is_file()
    listed = client.get("/api/jobs?state=queued", headers=_bearer(token)).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    claimed = JobQueue(hub.store).claim("pg-worker")
    assert claimed.id == job["id"] and claimed.payload["name"] == "on-pg"
    client.app.state.service.close()


# -- uploads on a copy of the quick starter hub ---------------------------------------------------
def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _upload(client, token: str, data: bytes, name: str = "tiny-upload"):
    return client.post("/api/models", headers=_bearer(token),
                       files={"weights": ("tiny.onnx", data), "classes": ("c.txt", CLASSES)},
                       data={"name": name, "description": "a tiny CNN for the tests",
                             "license": "MIT", "domain": "grayscale footwear photos"})


def _names(answer) -> list[str]:
    return [m["name"] for m in answer.json()["models"]]


@pytest.mark.slow
def test_an_upload_becomes_a_labelled_selectable_model_without_a_restart(upload_hub, upload_tokens, tiny_onnx):
    from fastapi.testclient import TestClient

    from mll.serve import create_app
    from mll.serve.worker import Worker

    tokens = upload_tokens
    client = TestClient(create_app(upload_hub))
    reader = _bearer(tokens["reader"])
    before = client.get("/api/models?concept=sandal", headers=reader)  # labels loaded now
    assert before.status_code == 200 and "tiny-upload" not in _names(before)
    answer = _upload(client, tokens["uploader"], tiny_onnx)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["state"] == "queued" and job["upload"]["description"].startswith("a tiny")
    assert client.get(f"/api/jobs/{job['id']}", headers=reader).json()["state"] == "queued"
    worker = Worker(upload_hub, lease=10)
    try:
        ran = worker.run_once()
    finally:
        worker.close()
    assert ran.state == "done", ran.message
    status = client.get(f"/api/jobs/{job['id']}", headers=reader).json()
    assert status["state"] == "done" and status["model_id"] and status["attempts"] == 1
    assert status["progress"]["done"] == status["progress"]["total"] > 0
    model_id = status["model_id"]
    model = client.get(f"/api/models/{model_id}", headers=reader).json()
    assert model["labelled"] and model["nodes"] and model["license"] == "MIT"
    assert model["card"]["description"] == "a tiny CNN for the tests"
    assert model["card"]["job_id"] == job["id"]
    after = client.get("/api/models?concept=sandal", headers=reader)
    assert "tiny-upload" in _names(after)  # the same server, no restart
    selection = client.post("/api/select", headers=reader,
                            json={"classes": ["sandal", "sneaker", "ankle boot"]})
    assert selection.status_code == 200
    assert client.app.state.service.labels().models[model_id].info.name == "tiny-upload"
    assert not (upload_hub / "uploads" / job["id"]).exists()  # staging cleared
    gone = client.delete(f"/api/models/{model_id}", headers=_bearer(tokens["admin"]))
    assert gone.status_code == 200 and gone.json()["removed"]["id"] == model_id
    assert "tiny-upload" not in _names(client.get("/api/models?concept=sandal", headers=reader))
    assert client.get(f"/api/models/{model_id}", headers=reader).status_code == 404


@pytest.mark.slow
def test_a_model_that_fails_its_checks_fails_its_job_and_leaves_nothing(upload_hub, upload_tokens):
    from fastapi.testclient import TestClient

    from mll.serve import create_app
    from mll.serve.worker import Worker

    tokens = upload_tokens
    client = TestClient(create_app(upload_hub))
    n_models = len(client.get("/api/models", headers=_bearer(tokens["reader"])).json()["models"])
    job = _upload(client, tokens["uploader"], b"\x08\x01not an onnx graph").json()
    worker = Worker(upload_hub, lease=10)
    try:
        ran = worker.run_once()
    finally:
        worker.close()
    assert ran.state == "failed" and ran.message and "\n" not in ran.message
    assert ran.model_id is None
    models = client.get("/api/models", headers=_bearer(tokens["reader"])).json()["models"]
    assert len(models) == n_models
    assert not (upload_hub / "uploads" / job["id"]).exists()


def _wait(predicate, seconds: float, what: str, proc=None) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_worker_killed_mid_job_leaves_it_to_another_that_resumes(upload_hub, upload_tokens, tiny_onnx):
    from fastapi.testclient import TestClient

    from mll.hub import Hub
    from mll.serve import create_app
    from mll.serve.worker import Worker

    tokens = upload_tokens
    client = TestClient(create_app(upload_hub))
    job_id = _upload(client, tokens["uploader"], tiny_onnx).json()["id"]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path), "MLL_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mll", "worker", "--hub", str(upload_hub),
                             "--lease", "2", "--batch", "16", "--max-jobs", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with Hub.open(upload_hub, create=False) as hub:
        queue = JobQueue(hub.store)
        try:
            def shards() -> list[Path]:
                return sorted(upload_hub.glob("labels/*/shards/*.npz"))

            _wait(lambda: len(shards()) >= 3, 120, "the first shards", proc)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        killed = queue.get(job_id)
        assert killed.state == "running" and killed.phase == "labelling" and killed.model_id
        assert not killed.finished_at
        before = len(shards())
        # Not half-visible: the model is in the hub, but selection does not see it yet.
        assert not hub.get(killed.model_id).labelled
        assert killed.model_id not in client.app.state.service.labels().models
    time.sleep(2.1)  # the lease (2 s) runs out
    worker = Worker(upload_hub, lease=10, batch=16)
    try:
        resumed = worker.run_once()
    finally:
        worker.close()
    assert resumed.id == job_id and resumed.state == "done", resumed.message
    assert resumed.attempts == 2 and resumed.model_id == killed.model_id
    ran, total = map(int, re.search(r"(\d+) of (\d+) sample images", resumed.message).groups())
    assert total == resumed.total and ran <= total - 16 * before  # resumed, not restarted
    assert killed.model_id in client.app.state.service.labels().models


@pytest.mark.slow
def test_mll_serve_workers_label_an_upload_over_http(upload_hub, upload_tokens, tiny_onnx, tmp_path):
    import socket

    tokens = upload_tokens
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path), "MLL_NO_PROGRESS": "1"}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mll", "serve", "--hub", str(upload_hub),
                                 "--port", str(port), "--workers", "1"], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(base + "/api/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        _wait(up, 90, "the server", proc)
        answer = httpx.post(base + "/api/models", headers=_bearer(tokens["uploader"]),
                            files={"weights": ("tiny.onnx", tiny_onnx),
                                   "classes": ("c.txt", CLASSES)}, data={"name": "over-http"})
        assert answer.status_code == 202, answer.text
        url = base + answer.headers["location"]
        reader = _bearer(tokens["reader"])
        _wait(lambda: httpx.get(url, headers=reader).json()["state"] in ("done", "failed"), 180,
              "the job", proc)
        job = httpx.get(url, headers=reader).json()
        assert job["state"] == "done", job["message"]
        found = httpx.get(base + "/api/models?concept=sandal", headers=reader).json()
        assert "over-http" in [m["name"] for m in found["models"]]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = log.read_text()
    assert "started 1 worker(s)" in text and tokens["uploader"] not in text


@pytest.mark.slow
@pytest.mark.ray
def test_a_worker_can_label_on_the_ray_executor(upload_hub, upload_tokens, tiny_onnx):
    pytest.importorskip("ray", reason="the Ray executor needs mll[ray]")
    from fastapi.testclient import TestClient

    from mll.serve import create_app
    from mll.serve.worker import Worker

    tokens = upload_tokens
    client = TestClient(create_app(upload_hub))
    job_id = _upload(client, tokens["uploader"], tiny_onnx, name="on-ray").json()["id"]
    worker = Worker(upload_hub, executor="ray", lease=20)
    try:
        ran = worker.run_once()
    finally:
        worker.close()
    assert ran.id == job_id and ran.state == "done", ran.message
    found = client.get("/api/models?concept=sandal", headers=_bearer(tokens["reader"]))
    assert "on-ray" in _names(found)


def _nice(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_the_workers_of_mll_serve_stop_with_it_even_when_it_is_killed(empty_hub, tmp_path, sig):
    import socket

    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mll", "serve", "--hub", str(empty_hub),
                                 "--port", str(port), "--workers", "2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(lambda: "started 2 worker(s)" in log.read_text(), 90, "the workers", proc)
        pids = [int(p) for p in re.search(r"pids ([\d, ]+)", log.read_text()).group(1)
                .split(", ")]
        assert all(_alive(p) for p in pids)
        # labelling yields the CPU to the server: its workers run at nice 10 (field 19 of stat)
        _wait(lambda: all(_nice(p) == os.nice(0) + 10 for p in pids), 30, "the workers' nice")
    finally:
        proc.send_signal(sig)
        proc.wait(timeout=30)
    _wait(lambda: not any(_alive(p) for p in pids), 30, f"the workers to stop ({sig.name})")
