"""``/readyz`` fails when the audit store cannot write, as every decision then does (D10).

Before, readiness only read, so a full disk or a read-only database kept the node in rotation
while every decision answered 503. The read-only database here is SQLite's ``query_only`` on
every new connection (root ignores file modes; this refuses writes the same way).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.audit.records import BODY


def _query_only(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA query_only = ON")


def test_readiness_follows_writability(api: TestClient, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the read-only switch used here is SQLite's")
    store = api.app.state.cds.audit  # type: ignore[attr-defined]
    assert api.get("/readyz").status_code == 200
    event.listen(store.engine, "connect", _query_only)
    store.engine.dispose()
    try:
        ready = api.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"] == "not-writable"
        assert api.post("/v1/evaluate", json=BODY).status_code == 503
    finally:
        event.remove(store.engine, "connect", _query_only)
        store.engine.dispose()
    assert api.get("/readyz").status_code == 200
    assert api.post("/v1/evaluate", json=BODY).status_code == 200


def test_sqlite_commits_are_synchronous_full(api: TestClient, db_url: str) -> None:
    """D12: a recorded decision survives an OS crash, not only a process kill."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite only")
    store = api.app.state.cds.audit  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
