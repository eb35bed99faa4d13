"""Every audit test runs on both backends: SQLite (the embedded default) and a real PostgreSQL.

The PostgreSQL cluster is started once per session (``tests/pg.py``); each test gets a fresh
database in it, migrated by the code under test, so no test sees another's rows. The PostgreSQL
cases are marked ``integration`` (``make check`` leaves them to ``make test``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.audit.store import AuditStore
from engine.settings import BUNDLED_RULES, Settings
from tests.apps import MakeClient
from tests.pg import PgCluster, pg_cluster

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
HASH_KEY = "test-hash-key-0123456789abcdef0123456789"


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    with pg_cluster() as cluster:
        yield cluster


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/audit.db"
    cluster: PgCluster = request.getfixturevalue("pg")
    return cluster.create_database()


@pytest.fixture
def store(db_url: str) -> Iterator[AuditStore]:
    s = AuditStore(db_url, HASH_KEY)
    s.migrate()
    yield s
    s.dispose()


def app_settings(db_url: str, **overrides: object) -> Settings:
    return Settings(database_url=db_url, rules_dir=BUNDLED_RULES, audit_hash_key=HASH_KEY, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def api(db_url: str, make_client: MakeClient) -> TestClient:
    return make_client(app_settings(db_url))
