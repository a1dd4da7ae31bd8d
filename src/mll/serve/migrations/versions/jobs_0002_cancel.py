"""Jobs can be cancelled: states ``cancelling`` (a running job asked to stop at its next lease
renewal) and ``cancelled``.

Revision ID: jobs_0002
Revises: jobs_0001
Create Date: 2026-12-02
"""

from alembic import op

revision = "jobs_0002"
down_revision = "jobs_0001"
branch_labels = None
depends_on = None

OLD = "state IN ('queued', 'running', 'done', 'failed')"
NEW = "state IN ('queued', 'running', 'done', 'failed', 'cancelling', 'cancelled')"


def _check(states: str) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table (indexes included).
    with op.batch_alter_table("jobs", recreate="auto") as batch:
        batch.drop_constraint("ck_jobs_state", type_="check")
        batch.create_check_constraint("ck_jobs_state", states)


def upgrade() -> None:
    _check(NEW)


def downgrade() -> None:
    op.execute("UPDATE jobs SET state = 'failed', phase = 'failed' "
               "WHERE state IN ('cancelling', 'cancelled')")
    _check(OLD)
