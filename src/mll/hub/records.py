"""Typed records of the hub database: its declarative base, and the records later stages write.

``LabelSummary`` is the labels stage's record (one row per model: what ``mll hub list/show``
report about the model's current label). The labels stage is its only writer
(:func:`upsert_label_summary`, called by ``mll.labels.summaries.record_summary``) and its migration
(``mll/labels/migrations``) creates the table. The class lives here, on the store's metadata,
rather than in ``mll.labels`` because imports go downstream only: ``mll.labels`` imports
``mll.hub``, so the hub, which reads the row to say whether a model is labelled
(:func:`label_summaries`), must not import ``mll.labels``; and the row's foreign key to
``models.id`` resolves only in the same metadata as :class:`~mll.hub.store.ModelRow`.
``mll.labels.summaries`` is the record's public face for the labels stage and those after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    """The declarative base of every table in the hub database."""


class LabelSummary(Base):
    """A model's current label: versions it was made for, its size and headline accuracy.

    Columns and types match the labels stage's migrations (``labels_0001``); a column changed
    here needs a new migration there.
    """

    __tablename__ = "label_summaries"

    model_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    graph_version: Mapped[str] = mapped_column(String(64))
    corpus_version: Mapped[str] = mapped_column(String(64))
    images: Mapped[int] = mapped_column(Integer)
    nodes_covered: Mapped[int] = mapped_column(Integer)
    #: own-class accuracy of an expert, zero-shot accuracy of a VLM; None without any image
    mean_accuracy: Mapped[float | None] = mapped_column(Float)
    labelling_seconds: Mapped[float] = mapped_column(Float)
    bytes: Mapped[int] = mapped_column(BigInteger)
    labelled_at: Mapped[str] = mapped_column(String(32))  # ISO 8601, UTC ("...Z")
    complete: Mapped[bool] = mapped_column(Boolean)

    def to_dict(self) -> dict[str, Any]:
        """Every column by name (``ModelInfo.labels``, ``mll hub show --json``)."""
        return {c.key: getattr(self, c.key) for c in self.__table__.columns}


def upsert_label_summary(session: Session, summary: LabelSummary) -> None:
    """Insert or replace ``summary``'s row in one statement, so no reader sees it missing.

    SQLite and PostgreSQL: ``INSERT ... ON CONFLICT (model_id) DO UPDATE``; other databases: a
    merge inside the caller's transaction.
    """
    values = summary.to_dict()
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        session.merge(summary)
        return
    stmt = insert(LabelSummary).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LabelSummary.model_id],
        set_={k: stmt.excluded[k] for k in values if k != "model_id"})
    session.execute(stmt)


def label_summaries(session: Session, model_ids: Iterable[str]) -> dict[str, LabelSummary]:
    """The label summaries of ``model_ids`` that exist, by model id."""
    ids = list(model_ids)
    if not ids:
        return {}
    rows = session.scalars(select(LabelSummary).where(LabelSummary.model_id.in_(ids)))
    return {row.model_id: row for row in rows}
