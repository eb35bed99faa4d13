"""The schema comes from Alembic migrations, matches the models, and migrating twice is harmless."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from engine.audit import migrate
from engine.audit.models import Base
from engine.audit.store import AuditStore


def test_migrated_schema_matches_the_models(store: AuditStore) -> None:
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrating_again_and_concurrently_is_a_no_op(db_url: str) -> None:
    stores = [AuditStore(db_url, "k") for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:  # workers and replicas starting at the same moment
        list(pool.map(lambda s: s.migrate(), stores))
    stores[0].migrate()
    assert {migrate.current_revision(s.engine) for s in stores} == {migrate.head_revision()}
    assert stores[0].ping()
    for s in stores:
        s.dispose()


def test_fresh_database_is_not_ready_until_migrated(db_url: str) -> None:
    s = AuditStore(db_url, "k")
    assert migrate.current_revision(s.engine) is None
    assert s.ping() is False
    s.migrate()
    assert s.ping() is True
    s.dispose()
