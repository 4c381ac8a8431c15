"""Schema 3: claims, project identity, checksum index."""

from alembic import op

from text2seg_widgets.store.schema import run_step

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_step(op.get_bind(), 3)
