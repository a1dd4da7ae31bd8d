"""The candidate index: which labelled models serve each node, with their measured accuracy.

Revision ID: labels_0002
Revises: labels_0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "labels_0002"
down_revision = "labels_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_serving",
        sa.Column("model_id", sa.String(16), sa.ForeignKey("models.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("node", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("images", sa.Integer, nullable=False),
        sa.Column("correct", sa.Integer, nullable=False),
        sa.Column("rank", sa.Float, nullable=False),
    )
    op.create_index("ix_label_serving_rank", "label_serving",
                    ["node", sa.text("rank DESC"), sa.text("images DESC"), "model_id"])
    op.create_index("ix_label_serving_kind_rank", "label_serving",
                    ["node", "kind", sa.text("rank DESC"), sa.text("images DESC"), "model_id"])


def downgrade() -> None:
    op.drop_table("label_serving")
