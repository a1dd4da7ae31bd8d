"""Models and their head classes.

Revision ID: hub_0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "hub_0001"
down_revision = None
branch_labels = ("hub",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False, index=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("family", sa.String(40), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("license", sa.String(100), nullable=False),
        sa.Column("n_params", sa.BigInteger, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("input_size", sa.Integer, nullable=False),
        sa.Column("input_channels", sa.Integer, nullable=False),
        sa.Column("input_mean", sa.JSON, nullable=False),
        sa.Column("input_std", sa.JSON, nullable=False),
        sa.Column("backbone", sa.String(80), nullable=True, index=True),
        sa.Column("artifact_digest", sa.String(64), nullable=False, index=True),
        sa.Column("artifact_bytes", sa.BigInteger, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('expert', 'vlm')", name="ck_models_kind"),
    )
    op.create_table(
        "model_classes",
        sa.Column("model_id", sa.String(16), sa.ForeignKey("models.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("wnid", sa.String(16), nullable=True, index=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("confirmed", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_classes")
    op.drop_table("models")
