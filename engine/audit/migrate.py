"""Bring an audit database to the newest schema with Alembic, safely from many processes at once.

The app migrates at start-up so ``make run`` works on a fresh clone and a new release upgrades its
own database. Several processes can start together (gunicorn workers, replicas behind a load
balancer), so the upgrade runs under a lock: a PostgreSQL advisory lock held for the migration's
transaction, or an exclusive file lock beside a SQLite file. The second process then finds the
schema at head and does nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as SqlEngine

ALEMBIC_DIR = Path(__file__).resolve().parents[2] / "alembic"
# any constant works; it only has to be the same in every process that migrates this database
_PG_LOCK_KEY = 0x0CD5_A0D1


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: SqlEngine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _sqlite_file_lock(engine: SqlEngine) -> Iterator[None]:
    db = engine.url.database
    if not db or db == ":memory:":
        yield
        return
    lock_path = Path(db).with_name(Path(db).name + ".migrate.lock")
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def upgrade(engine: SqlEngine) -> None:
    """Run every pending migration; a no-op when the database is already at head."""
    if engine.dialect.name == "sqlite":
        with _sqlite_file_lock(engine), engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        command.upgrade(alembic_config(conn), "head")
