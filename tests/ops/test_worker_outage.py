"""A worker started while the audit database is unavailable starts not-ready, then turns ready (D2).

Before, each worker migrated in its start-up: a replacement started during an outage exited with
a boot error and gunicorn halted the master, so nothing came back when the database returned.
This is the in-process half; ``test_outage_soak.py`` kills a real worker during a PostgreSQL
outage under load.
"""

from __future__ import annotations

from pathlib import Path

from tests.audit.records import BODY


def test_a_worker_started_during_an_outage_starts_not_ready(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from engine.api.app import create_app
    from engine.settings import Settings

    db = tmp_path / "audit.db"
    db.write_bytes(b"not a database " * 512)
    settings = Settings(database_url=f"sqlite:///{db}", migrate_on_start=False)  # as serve sets for workers
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 503
        assert client.post("/v1/evaluate", json=BODY).status_code == 503
        db.unlink()
        # The master migrated before forking; here the schema comes back with the database.
        from engine.audit.store import AuditStore

        restored = AuditStore(settings.database_url, settings.audit_hash_key)
        restored.migrate()
        restored.dispose()
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/evaluate", json=BODY).status_code == 200
