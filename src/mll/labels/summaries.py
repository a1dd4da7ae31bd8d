"""The labels stage's record in the hub database: one :class:`LabelSummary` row per model.

The labels stage is the only writer (:func:`record_summary`, after a label is published); the hub
reads the row for ``mll hub list/show`` and later stages may read it with :func:`read_summaries`.
The mapped class is defined in :mod:`mll.hub.records`, on the hub store's metadata, because the
hub must read it without importing this stage (imports go downstream only); this module is its
public face in the labels stage. ``mll.labels`` does not import it, so importing the labels stage
stays free of SQLAlchemy and the hub.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..hub.records import LabelSummary, label_summaries, replace_serving, upsert_label_summary

if TYPE_CHECKING:
    from ..hub.store import Store

__all__ = ["LabelSummary", "read_summaries", "record_summary", "summary_record"]


def summary_record(summary: dict[str, Any]) -> LabelSummary:
    """The row for a published label's ``summary.json`` (plus its ``bytes`` on disk)."""
    return LabelSummary(
        model_id=summary["model_id"], graph_version=summary["graph_version"],
        corpus_version=summary["corpus_version"], images=summary["images"],
        nodes_covered=summary["nodes_covered"],
        mean_accuracy=summary.get("mean_accuracy_own_classes",
                                  summary.get("zero_shot_accuracy")),
        labelling_seconds=summary["labelling_seconds"], bytes=summary["bytes"],
        labelled_at=summary["labelled_at"], complete=True)


def record_summary(store: Store, summary: dict[str, Any] | LabelSummary,
                   serving: Sequence[dict[str, Any]] | None = None) -> LabelSummary:
    """Insert or replace the model's row in one write; readers see the old row or the new one.

    ``serving`` (from :func:`mll.labels.serving.serving_rows`) replaces the model's rows in the
    candidate index in the same transaction, so the index never disagrees with the summary.
    """
    row = summary if isinstance(summary, LabelSummary) else summary_record(summary)
    with store.write() as session:
        upsert_label_summary(session, row)
        if serving is not None:
            replace_serving(session, [row.model_id], serving)
    return row


def read_summaries(store: Store, model_ids: Iterable[str]) -> dict[str, LabelSummary]:
    """The label summaries of ``model_ids`` that exist, by model id."""
    with store.read() as session:
        return label_summaries(session, model_ids)
