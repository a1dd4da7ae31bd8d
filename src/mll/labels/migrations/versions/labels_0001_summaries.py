"""Label summaries: what ``mll hub list/show`` reports about each model's current label.

Revision ID: labels_0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "labels_0001"
down_revision = None
branch_labels = ("labels",)
depends_on = "hub_0001"


def upgrade() -> None:
    op.create_table(
        "label_summaries",
        sa.Column("model_id", sa.String(16), sa.ForeignKey("models.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("graph_version", sa.String(64), nullable=False),
        sa.Column("corpus_version", sa.String(64), nullable=False),
        sa.Column("images", sa.Integer, nullable=False),
        sa.Column("nodes_covered", sa.Integer, nullable=False),
        sa.Column("mean_accuracy", sa.Float, nullable=True),
        sa.Column("labelling_seconds", sa.Float, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("labelled_at", sa.String(32), nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("label_summaries")
