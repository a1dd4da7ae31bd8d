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

``LabelServing`` is the labels stage's second record, the candidate index: one row per (node,
model that serves it), written with the summary in one transaction, read by :func:`serving`
(``Hub.serving``, ``mll hub serving``) so "which models serve this node" is one indexed query
however large the hub grows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    delete,
    insert,
    select,
    text,
)
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


class LabelServing(Base):
    """One node a labelled model serves, with its measured accuracy there (the candidate index).

    An expert serves a node when one of its heads is mapped to that node or below it, measured on
    the sample images at or below those heads; a VLM serves a node with sample images at or below
    it, measured zero-shot there (the definitions of ``mll.selection.coverage.node_models``).
    ``rank`` is the accuracy rounded to 4 places, or -1 without images, so one descending index
    orders answers the same way on SQLite and PostgreSQL (their NULL orders differ). Columns and
    types match the labels stage's migration ``labels_0002``.
    """

    __tablename__ = "label_serving"
    # the primary key starts with the model (removal and republishing delete by model); each
    # index below answers a node's ranked query, all kinds or one, as one ordered range scan
    __table_args__ = (
        Index("ix_label_serving_rank", "node", text("rank DESC"), text("images DESC"),
              "model_id"),
        Index("ix_label_serving_kind_rank", "node", "kind", text("rank DESC"),
              text("images DESC"), "model_id"))

    model_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    node: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    images: Mapped[int] = mapped_column(Integer)
    correct: Mapped[int] = mapped_column(Integer)
    rank: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class Serving:
    """A model that serves a node, as :func:`serving` answers it."""

    node: str
    model_id: str
    name: str
    kind: str
    family: str
    images: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return None if self.images == 0 else round(self.correct / self.images, 4)

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "id": self.model_id, "name": self.name, "kind": self.kind,
                "family": self.family, "images": self.images, "correct": self.correct,
                "accuracy": self.accuracy}


def replace_serving(session: Session, model_ids: Sequence[str],
                    rows: Sequence[dict[str, Any]]) -> None:
    """Replace the index rows of ``model_ids`` by ``rows`` (dicts of :class:`LabelServing`'s
    columns but ``rank``), inside the caller's transaction."""
    if model_ids:
        session.execute(delete(LabelServing).where(LabelServing.model_id.in_(list(model_ids))))
    if rows:
        session.execute(insert(LabelServing.__table__), [  # Core: one executemany
            r | {"rank": -1.0 if r["images"] == 0 else round(r["correct"] / r["images"], 4)}
            for r in rows])


def serving(session: Session, node: str, *, kind: str | None = None,
            limit: int | None = 20) -> list[Serving]:
    """The models that serve ``node``, best measured accuracy first (then more images, then id);
    models with no image measured there come last. One range scan of the rank index."""
    from .store import ModelRow

    query = (select(LabelServing.model_id, ModelRow.name, LabelServing.kind, ModelRow.family,
                    LabelServing.images, LabelServing.correct)
             .join(ModelRow, ModelRow.id == LabelServing.model_id)
             .where(LabelServing.node == node))
    if kind is not None:
        query = query.where(LabelServing.kind == kind)
    query = query.order_by(LabelServing.rank.desc(), LabelServing.images.desc(),
                           LabelServing.model_id)
    if limit is not None:
        query = query.limit(limit)
    return [Serving(node, *row) for row in session.execute(query)]


def served_models(session: Session, model_ids: Iterable[str]) -> set[str]:
    """Which of ``model_ids`` have rows in the index (a label published before it had none)."""
    ids = list(model_ids)
    if not ids:
        return set()
    return set(session.scalars(select(LabelServing.model_id).distinct()
                               .where(LabelServing.model_id.in_(ids))))


def serving_top(session: Session, nodes: Sequence[str], *, kind: str | None = None,
                limit: int = 8) -> dict[str, list[str]]:
    """Per node in ``nodes``, the ids of the ``limit`` best models serving it (the order of
    :func:`serving`): one short range scan of the rank index per node, each stopping after
    ``limit`` rows. (A single window query over all the nodes numbers every row of a node first:
    at 100,000 models a node near the root has tens of thousands, 1.3 s for a 100-class task
    against about 0.1 s this way.)"""
    from sqlalchemy import bindparam

    nodes = sorted(set(nodes))
    query = select(LabelServing.model_id).where(LabelServing.node == bindparam("node"))
    if kind is not None:
        query = query.where(LabelServing.kind == kind)
    query = query.order_by(LabelServing.rank.desc(), LabelServing.images.desc(),
                           LabelServing.model_id).limit(limit)
    return {v: list(session.scalars(query, {"node": v})) for v in nodes}


def labelled_models(session: Session) -> list[tuple[str, str, tuple[str, str] | None]]:
    """(id, kind, (graph version, corpus version) of its complete label or None) of every model,
    in the order they were added: what a label table needs to know before reading any label."""
    from .store import ModelRow

    # Two narrow Core queries joined here: sorting the joined rows costs SQLite three times as
    # much (1.9 s against 0.6 s at 100,000 models), and ORM rows cost more than the query.
    conn, ls, m = session.connection(), LabelSummary.__table__.c, ModelRow.__table__.c
    labels = {mid: (g, c) for mid, g, c, complete in conn.execute(
        select(ls.model_id, ls.graph_version, ls.corpus_version, ls.complete)) if complete}
    return [(mid, kind, labels.get(mid)) for mid, kind in conn.execute(
        select(m.id, m.kind).order_by(m.created_at, m.id))]
