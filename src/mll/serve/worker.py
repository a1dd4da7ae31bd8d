"""Workers of ``mll serve``: claim a job, add the uploaded model, label it, end the job.

A worker is one process (``mll worker``, or one of ``mll serve --workers N``) on any machine that
reaches the hub directory and database. It runs one job at a time through the stages' Python API
(``Hub.add``, then ``label_hub`` on the local or the Ray executor); a thread renews the job's
lease and reports progress (sample images with outputs, counted from the model's shards) while it
works. Both steps are idempotent, so a job re-claimed after its worker died redoes nothing that was
finished: the same upload gives the same model, and labelling resumes from its shards.

A model is added to the hub before it is labelled, but selection and the concept search read only
labelled models, so it becomes visible to them once its label is published. When a job fails, the
model it added is removed again: nothing of a failed upload stays visible.
"""

from __future__ import annotations

import logging
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._safepath import child_path
from ..errors import InvalidParameterError, MLLError
from ..labels.executors import failure_reason
from .jobs import DEFAULT_LEASE, CardRow, JobInfo, JobQueue, worker_name
from .uploads import staging_dir

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 64  # sample images per shard: the unit a re-claimed job resumes from


class Worker:
    """Runs the hub's queued jobs: ``Worker(hub_dir, db).run()`` until stopped."""

    def __init__(self, hub: str | Path | None = None, db: str | None = None, *,
                 executor: str = "local", address: str | None = None,
                 batch: int = DEFAULT_BATCH, lease: float = DEFAULT_LEASE,
                 poll: float = 1.0) -> None:
        from ..hub import Hub
        from ..labels.executors import executors

        executors.get(executor)  # an unknown executor is an error now, with suggestions
        if batch < 1 or lease <= 0 or poll <= 0:
            raise InvalidParameterError("worker batch, lease and poll must be positive, got "
                                        f"{batch}, {lease}, {poll}")
        self.hub = Hub.open(hub, db, create=False)
        self.db, self.executor, self.address = db, executor, address
        self.batch, self.lease, self.poll = batch, lease, poll
        self.queue = JobQueue(self.hub.store)
        self.name = worker_name()

    def close(self) -> None:
        self.hub.close()

    def run(self, stop: threading.Event | None = None, max_jobs: int | None = None) -> int:
        """Claim and run jobs until ``stop`` is set (or ``max_jobs`` ran); returns how many."""
        stop = stop or threading.Event()
        ran = 0
        logger.info("worker %s on hub %s", self.name, self.hub.root)
        while not stop.is_set() and (max_jobs is None or ran < max_jobs):
            if self.run_once() is None:
                stop.wait(self.poll)
            else:
                ran += 1
        return ran

    def run_once(self) -> JobInfo | None:
        """Claim one job and run it to its end; None when no job was waiting."""
        orphan = self.queue.orphaned_cancel()
        if orphan is not None:  # cancelled while its worker died: clean up and end it here
            self._remove_made(orphan, None)
            self.queue.end_cancelled(orphan.id, None, "cancelled (its worker had stopped); "
                                                      "nothing of the upload was kept")
            return self.queue.get(orphan.id)
        job = self.queue.claim(self.name, self.lease, on_given_up=self._clean_up)
        if job is None:
            return None
        if job.kind != "upload":
            self.queue.finish(job.id, self.name, failed=True,
                              message=f"this worker does not know jobs of kind {job.kind!r}")
            return self.queue.get(job.id)
        beat = _Heartbeat(self.queue, job.id, self.name, self.lease)
        beat.start()
        try:
            self._upload(job, beat)
        finally:
            beat.stop()
        return self.queue.get(job.id)

    def _upload(self, job: JobInfo, beat: _Heartbeat) -> None:
        """Add the staged model, label it, and end the job; every failure ends it as failed."""
        from ..labels import label_hub

        p = job.payload
        staging = staging_dir(self.hub.root, job.id)
        info = None
        try:
            model = child_path(staging, p["file"], "staged file")
            if not model.exists():
                raise InvalidParameterError("the uploaded file is no longer staged; upload the "
                                            "model again")
            beat.update(phase="checking")
            info = self.hub.add(model, kind=p.get("kind"), family=p.get("family"),
                                classes=p["classes"], name=p.get("name"),
                                source=p.get("source"), license=p.get("license"),
                                domain=p.get("domain", ""), options=p.get("options"),
                                max_bytes=p["max_bytes"])
            if beat.should_stop():
                raise _Cancelled
            beat.update(phase="labelling", model_id=info.id)
            beat.watch(self.hub.root, info.content_hash)
            report = label_hub(self.hub.root, models=[info.id], db=self.db,
                               executor=self.executor, address=self.address, batch=self.batch,
                               show_progress=False, stop=beat.should_stop)
            if report.stopped:
                raise _Cancelled
            if report.failed:
                raise InvalidParameterError(f"labelling failed: {report.failed[0]['reason']}")
        except _Cancelled:
            self._cancel(job, info)
            return
        except MLLError as exc:
            self._fail(job, info, " ".join(str(exc).split()))
            return
        except Exception as exc:  # noqa: BLE001 - a model that crashes its code fails its job
            logger.exception("job %s failed", job.id)
            self._fail(job, info, failure_reason(exc))
            return
        beat.stop()
        card = CardRow(model_id=info.id, description=p.get("description", ""),
                       uploaded_by=job.created_by, job_id=job.id, created_at=datetime.now(UTC))
        if self.queue.finish(job.id, self.name, model_id=info.id, card=card,
                             message=f"model {info.id} labelled and live: "
                                     f"{report.outputs_computed} of {report.images} sample "
                                     "images run by this attempt (the rest were done before "
                                     "it)"):
            shutil.rmtree(staging, ignore_errors=True)
        elif self.queue.cancelled(job.id, self.name):  # cancelled as its label was published
            self._cancel(job, info)

    def _cancel(self, job: JobInfo, info: Any) -> None:
        """End a job cancelled mid-way: remove what it made, then mark it cancelled."""
        self._remove_made(job, info)
        when = "before its model was added" if info is None else "while it was being labelled"
        self.queue.end_cancelled(job.id, self.name, f"cancelled {when}; nothing of the upload "
                                                    "was kept")

    def _remove_made(self, job: JobInfo, info: Any) -> None:
        """Remove what a cancelled job made: the model it added (row, card, label summary,
        artifact), that model's label files and shards unless another model has the same
        content, and the staged upload. Idempotent: a second worker may run it again."""
        from ..labels import LabelStore

        if info is None and job.model_id is not None:
            try:
                info = self.hub.get(job.model_id)
            except MLLError:
                info = None
        if info is not None and _created_by(info, job):
            try:
                self.hub.remove(info.id)
            except MLLError as exc:
                logger.warning("cancelling job %s: %s", job.id, exc)
            if not any(m.content_hash == info.content_hash for m in self.hub.list()):
                shutil.rmtree(LabelStore(self.hub.root).model_dir(info.content_hash),
                              ignore_errors=True)
        shutil.rmtree(staging_dir(self.hub.root, job.id), ignore_errors=True)

    def _clean_up(self, job: JobInfo) -> None:
        """What a job given up on left: its staged file, and the model it added unlabelled."""
        if job.model_id is not None:
            try:
                info = self.hub.get(job.model_id)
                if not info.labelled and _created_by(info, job):
                    self.hub.remove(info.id)
            except MLLError as exc:
                logger.warning("cleaning up after job %s: %s", job.id, exc)
        shutil.rmtree(staging_dir(self.hub.root, job.id), ignore_errors=True)

    def _fail(self, job: JobInfo, info: Any, message: str) -> None:
        if self.queue.cancelled(job.id, self.name):  # cancelled meanwhile: that ends it
            self._cancel(job, info)
            return
        if not self.queue.renew(job.id, self.name, self.lease):
            logger.warning("job %s failed here (%s) but is no longer this worker's; leaving it "
                           "to the worker that holds it", job.id, message)
            return
        if info is not None and _created_by(info, job):
            try:
                self.hub.remove(info.id)  # nothing of a failed upload stays visible
            except MLLError as exc:
                message += f" (and removing the model failed: {exc})"
        if self.queue.finish(job.id, self.name, failed=True, message=message):
            shutil.rmtree(staging_dir(self.hub.root, job.id), ignore_errors=True)


class _Cancelled(Exception):
    """The job in hand was cancelled: stop and remove what it made."""


def _created_by(info: Any, job: JobInfo) -> bool:
    """Whether the job added this model (not an upload of a model the hub already held)."""
    return datetime.fromisoformat(info.created_at) >= datetime.fromisoformat(job.created_at)


class _Heartbeat:
    """Renews a job's lease every third of it, with its phase and progress."""

    def __init__(self, queue: JobQueue, job_id: str, worker: str, lease: float) -> None:
        self.queue, self.job_id, self.worker, self.lease = queue, job_id, worker, lease
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._fields: dict[str, Any] = {}
        self._watch: tuple[Path, str] | None = None
        self._thread = threading.Thread(target=self._loop, name=f"lease {job_id}", daemon=True)
        self.lost = False
        self.cancel = threading.Event()
        self._asked = 0.0

    def should_stop(self) -> bool:
        """Whether the job was cancelled: known from the last renewal, or asked of the database
        at most once a second (labelling asks between groups of shards)."""
        import time

        if not self.cancel.is_set() and time.monotonic() - self._asked >= 1.0:
            self._asked = time.monotonic()
            if self.queue.cancelled(self.job_id, self.worker):
                self.cancel.set()
        return self.cancel.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def update(self, **fields: Any) -> None:
        """Set fields and renew now (the phase is seen at once, not at the next beat)."""
        with self._lock:
            self._fields.update(fields)
        self._beat()

    def watch(self, hub_root: Path, content_hash: str) -> None:
        """Report progress as the images of this model with outputs, out of the sample images."""
        from ..corpus import Corpus

        total = len(Corpus.open(hub_root).records(role="sample"))
        with self._lock:
            self._watch = (hub_root, content_hash)
            self._fields.update(total=total, done=0)
        self._beat()

    def _progress(self) -> None:
        if self._watch is None:
            return
        from ..labels import LabelStore

        root, chash = self._watch
        ids: set[str] = set()
        try:
            for out in LabelStore(root).known_outputs(chash):
                ids.update(out.id_list())
        except (OSError, ValueError, MLLError):  # a shard being written: counted next time
            return
        with self._lock:
            self._fields["done"] = min(len(ids), self._fields.get("total", len(ids)))

    def _beat(self) -> None:
        with self._lock:
            fields = dict(self._fields)
        if not self.queue.renew(self.job_id, self.worker, self.lease, **fields):
            if self.queue.cancelled(self.job_id, self.worker):
                self.cancel.set()
                return
            if not self.lost:
                logger.warning("job %s is no longer this worker's (its lease expired)",
                               self.job_id)
            self.lost = True

    def _loop(self) -> None:
        while not self._stop.wait(self.lease / 3):
            self._progress()
            try:
                self._beat()
            except MLLError as exc:  # a database hiccup: the next beat tries again
                logger.warning("renewing job %s failed: %s", self.job_id, exc)
