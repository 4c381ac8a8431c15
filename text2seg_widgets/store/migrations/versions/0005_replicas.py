"""Schema 5: consensus and honeypot replicas of images."""

from alembic import op

from text2seg_widgets.store.schema import run_step

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_step(op.get_bind(), 5)
