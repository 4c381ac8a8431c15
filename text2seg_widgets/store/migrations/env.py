"""Alembic environment of the project store: migrations run on the connection (and inside the
transaction) that :func:`text2seg_widgets.store.schema.migrate` hands over; never on their own."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("text2seg-widgets migrations run through Project.open/create (schema.migrate), "
                       "not from the alembic command line")
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():  # inside migrate()'s transaction: joins it, commits nothing
    context.run_migrations()
