"""Alembic environment. Hatchery runs migrations itself (``hatchery db upgrade``, or on start for
SQLite) by handing a live connection in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context

from hatchery.store.tables import defined_here, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `hatchery db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    include_object=defined_here,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
