"""Schema 1: classes, images, runs, candidates, annotations, history."""

from alembic import op

from text2seg_widgets.store.schema import run_step

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_step(op.get_bind(), 1)
