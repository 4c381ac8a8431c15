"""Schema 4: teams: members and roles, assignments, leases, the review stage."""

from alembic import op

from text2seg_widgets.store.schema import run_step

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_step(op.get_bind(), 4)
