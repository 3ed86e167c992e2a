"""Alembic environment: runs migrations on the connection that server/db/migrate.py hands over."""

from alembic import context

from headwater.server.db.models import Base, Private

target_metadata = [Base.metadata, Private.metadata]


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("Run migrations through `headwater db upgrade` (headwater.server.db.migrate).")
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("Offline (SQL script) migrations are not supported.")
run_migrations_online()
