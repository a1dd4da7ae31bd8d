"""Background jobs of ``mll serve``: a queue in the hub database, claimed by workers on a lease.

A job is a row of ``jobs`` (migration ``jobs_0001``). A worker claims the oldest claimable job
with one conditional ``UPDATE`` (claimable: queued, or running with its lease expired), so two
workers never hold the same job; while it works it renews the lease (and reports progress) every
few seconds. A worker killed with SIGKILL stops renewing: once the lease expires another worker
claims the job and runs it again from the start, which is cheap because every step is idempotent
(adding the same model returns it; labelling resumes from its finished shards). A job whose
workers die ``MAX_ATTEMPTS`` times is failed rather than retried for ever.

Only the worker holding a job may move it forward: every update names the worker, so a worker
that lost its lease (paused too long) learns it at its next renewal and its late writes are
ignored.

A job is cancelled by its uploader or an admin (:meth:`JobQueue.cancel`, migration
``jobs_0002``): a queued one at once (``cancelled``); a running one is marked ``cancelling`` and
its worker stops at its next lease renewal or labelling step, removes what the job made, and
ends it ``cancelled``. A ``cancelling`` job whose worker died is ended by the next claim.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, and_, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from ..errors import UnknownNameError
from ..hub.records import Base
from ..hub.store import Store, json_value

logger = logging.getLogger(__name__)

STATES = ("queued", "running", "done", "failed", "cancelling", "cancelled")
#: States a job ends in.
ENDED = ("done", "failed", "cancelled")
#: Seconds a claim lasts without renewal; a worker renews every third of it.
DEFAULT_LEASE = 30.0
#: Claims of one job before it is failed: each one ended with its worker gone mid-job.
MAX_ATTEMPTS = 3
MAX_MESSAGE = 1000


class JobRow(Base):
    """One background job; columns match the migration ``jobs_0001``."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    model_id: Mapped[str | None] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(32))
    done: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(MAX_MESSAGE))
    worker: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CardRow(Base):
    """The card uploaded with a model (its description and who uploaded it)."""

    __tablename__ = "model_cards"

    model_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    uploaded_by: Mapped[str | None] = mapped_column(String(16))
    job_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class JobInfo:
    """What a job's owner may see: state, progress and outcome (the payload's public part)."""

    id: str
    kind: str
    state: str
    phase: str
    done: int
    total: int
    message: str
    model_id: str | None
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    created_by: str | None
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        card = {k: self.payload.get(k) for k in ("name", "family", "kind", "description")}
        return {"id": self.id, "kind": self.kind, "state": self.state, "phase": self.phase,
                "progress": {"done": self.done, "total": self.total},
                "message": self.message, "model_id": self.model_id, "attempts": self.attempts,
                "created_at": self.created_at, "started_at": self.started_at,
                "finished_at": self.finished_at, "created_by": self.created_by,
                "upload": card}


def _info(row: JobRow) -> JobInfo:
    return JobInfo(row.id, row.kind, row.state, row.phase, row.done, row.total, row.message,
                   row.model_id, row.attempts, json_value(row.created_at), json_value(row.started_at),
                   json_value(row.finished_at), row.created_by, dict(row.payload))


def worker_name() -> str:
    """A name unique to this worker process, saying where it runs (host and pid)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


class JobQueue:
    """The job table of a hub database: ``JobQueue(hub.store)``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def submit(self, kind: str, payload: dict[str, Any], created_by: str | None = None,
               job_id: str | None = None) -> JobInfo:
        """Queue a job; its id is a random UUID-sized hex string unless given."""
        row = JobRow(id=job_id or secrets.token_hex(16), kind=kind, state="queued",
                     payload=payload, model_id=None, phase="queued", done=0, total=0,
                     message="", worker=None, lease_until=None, attempts=0,
                     created_by=created_by, created_at=_now(), started_at=None,
                     finished_at=None)
        with self.store.write() as s:
            s.add(row)
        logger.info("queued %s job %s", kind, row.id)
        return _info(row)

    def get(self, job_id: str) -> JobInfo:
        with self.store.read() as s:
            row = s.get(JobRow, job_id) if isinstance(job_id, str) and len(job_id) <= 32 else None
            if row is None:
                raise UnknownNameError("job", job_id, hint="job ids are returned by uploads")
            return _info(row)

    def list(self, state: str | None = None, limit: int = 100) -> list[JobInfo]:
        """The newest jobs first, optionally in one state."""
        with self.store.read() as s:
            query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
            if state is not None:
                query = query.where(JobRow.state == state)
            return [_info(r) for r in s.scalars(query)]

    @staticmethod
    def _claimable(now: datetime):
        return or_(JobRow.state == "queued",
                   and_(JobRow.state == "running", JobRow.lease_until < now))

    def cancel(self, job_id: str) -> JobInfo:
        """Cancel a job: a queued one now (``cancelled``; its staged upload is the caller's to
        delete), a running one at its worker's next step (``cancelling``). A job that already
        ended is returned unchanged; the caller tells by its state."""
        now = _now()
        with self.store.write() as s:
            queued = s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.state == "queued")
                               .values(state="cancelled", phase="cancelled", finished_at=now,
                                       message="cancelled before it ran")).rowcount
            if not queued:
                s.execute(update(JobRow).where(JobRow.id == job_id, JobRow.state == "running")
                          .values(state="cancelling",
                                  message="cancelling: its worker stops at its next step"))
        info = self.get(job_id)
        logger.info("job %s %s", job_id, info.state)
        return info

    def cancelled(self, job_id: str, worker: str) -> bool:
        """Whether ``worker``'s job was asked to stop (state ``cancelling``, still its own)."""
        with self.store.read() as s:
            return s.scalar(select(JobRow.id).where(
                JobRow.id == job_id, JobRow.worker == worker,
                JobRow.state == "cancelling")) is not None

    def end_cancelled(self, job_id: str, worker: str | None, message: str) -> bool:
        """End a ``cancelling`` job as ``cancelled`` once what it made is removed (``worker``:
        the one holding it; None for a job whose worker died, its lease expired)."""
        now = _now()
        mine = (JobRow.worker == worker if worker is not None
                else or_(JobRow.lease_until.is_(None), JobRow.lease_until < now))
        with self.store.write() as s:
            ended = s.execute(update(JobRow).where(JobRow.id == job_id,
                                                   JobRow.state == "cancelling", mine)
                              .values(state="cancelled", phase="cancelled", worker=None,
                                      lease_until=None, finished_at=now,
                                      message=message[:MAX_MESSAGE])).rowcount == 1
        if ended:
            logger.info("job %s cancelled", job_id)
        return ended

    def orphaned_cancel(self) -> JobInfo | None:
        """A ``cancelling`` job whose worker died (lease expired), to clean up and end."""
        with self.store.read() as s:
            row = s.scalars(select(JobRow).where(JobRow.state == "cancelling",
                                                 JobRow.lease_until < _now())
                            .order_by(JobRow.created_at).limit(1)).first()
            return None if row is None else _info(row)

    def claim(self, worker: str, lease: float = DEFAULT_LEASE,
              on_given_up: Callable[[JobInfo], None] | None = None) -> JobInfo | None:
        """Take the oldest claimable job for ``worker``, or None when there is none.

        The ``UPDATE`` re-checks the claim condition, so of two workers racing for one job
        exactly one changes the row (SQLite serialises the writes; PostgreSQL re-evaluates the
        condition on the locked row). A job past ``MAX_ATTEMPTS`` claims is failed instead, and
        ``on_given_up(job)`` called after that is committed (to clean up what the job left).
        """
        while True:
            given_up = None
            now = _now()
            with self.store.write() as s:
                job_id = s.scalar(select(JobRow.id).where(self._claimable(now))
                                  .order_by(JobRow.created_at, JobRow.id).limit(1))
                if job_id is None:
                    return None
                taken = s.execute(
                    update(JobRow).where(JobRow.id == job_id, self._claimable(now))
                    .values(state="running", worker=worker, attempts=JobRow.attempts + 1,
                            lease_until=now + timedelta(seconds=lease),
                            started_at=now)).rowcount
                row = s.get(JobRow, job_id) if taken == 1 else None
                if row is not None:
                    s.refresh(row)
                    if row.attempts > MAX_ATTEMPTS:
                        row.state, row.phase, row.finished_at = "failed", "failed", now
                        row.worker = row.lease_until = None
                        row.message = (f"its worker stopped {MAX_ATTEMPTS} times before "
                                       "finishing; upload the model again or see the workers' "
                                       "logs")
                        given_up = _info(row)
                    else:
                        logger.info("worker %s claimed job %s (attempt %d)", worker, job_id,
                                    row.attempts)
                        return _info(row)
            if given_up is not None and on_given_up is not None:
                logger.warning("job %s failed: %s", given_up.id, given_up.message)
                on_given_up(given_up)

    def _mine(self, job_id: str, worker: str):
        return and_(JobRow.id == job_id, JobRow.worker == worker, JobRow.state == "running")

    def renew(self, job_id: str, worker: str, lease: float = DEFAULT_LEASE,
              **progress: Any) -> bool:
        """Extend ``worker``'s lease (and set ``phase``, ``done``, ``total``, ``model_id`` when
        given); False when the job is no longer this worker's."""
        values = {k: v for k, v in progress.items()
                  if k in ("phase", "done", "total", "model_id") and v is not None}
        with self.store.write() as s:
            return s.execute(update(JobRow).where(self._mine(job_id, worker)).values(
                lease_until=_now() + timedelta(seconds=lease), **values)).rowcount == 1

    def finish(self, job_id: str, worker: str, *, failed: bool = False, message: str = "",
               model_id: str | None = None, card: CardRow | None = None) -> bool:
        """End ``worker``'s job as done (with the card of its model) or failed."""
        values: dict[str, Any] = {"state": "failed" if failed else "done", "worker": None,
                                  "lease_until": None, "finished_at": _now(),
                                  "phase": "failed" if failed else "done",
                                  "message": " ".join(message.split())[:MAX_MESSAGE]}
        if model_id is not None:
            values["model_id"] = model_id
        if not failed:
            values["done"] = JobRow.total
        with self.store.write() as s:
            ended = s.execute(update(JobRow).where(self._mine(job_id, worker))
                              .values(**values)).rowcount == 1
            if ended and card is not None:
                s.merge(card)
        if ended:
            logger.info("job %s %s", job_id, values["state"])
        return ended

    def card(self, model_id: str) -> dict[str, Any] | None:
        """The card uploaded with ``model_id``, or None for a model added otherwise."""
        with self.store.read() as s:
            row = s.get(CardRow, model_id)
            if row is None:
                return None
            return {"description": row.description, "uploaded_by": row.uploaded_by,
                    "job_id": row.job_id, "created_at": json_value(row.created_at)}
