"""Schema 2: review integrity and effort."""

from alembic import op

from text2seg_widgets.store.schema import run_step

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_step(op.get_bind(), 2)
