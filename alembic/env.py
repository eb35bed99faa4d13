"""Alembic environment for the audit store.

The service passes its own open connection (``config.attributes["connection"]``) so migrations run
inside the lock ``engine/audit/migrate.py`` holds. From the command line the URL is taken from
``-x url=...``, else the service's own settings (``CDSRULES_DATABASE_URL`` / ``DATABASE_URL`` / .env).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from engine.audit.models import Base
from engine.audit.store import normalise_url

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        from engine.settings import Settings

        url = Settings().database_url
    return normalise_url(url)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name)
    engine = create_engine(_url())
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
