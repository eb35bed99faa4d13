"""The real app for tests, without starting it (compile, lint, examples, migrate) for every test.

Start-up takes seconds, so it runs once per session through the app's own lifespan
(``served_state`` in ``tests/conftest.py``); each test then gets an app sharing that engine with
its own settings and its own, freshly migrated audit store. The start-up path itself is tested
where it matters: in ``tests/ops`` (real processes) and ``tests/authoring`` (reload, refusal).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.store import AuditStore
from engine.service.state import AppState
from engine.settings import BUNDLED_RULES, Settings

MakeClient = Callable[[Settings], TestClient]


def app_for(settings: Settings, base: AppState) -> FastAPI:
    audit = AuditStore(settings.database_url, settings.audit_hash_key, settings.audit_store_inputs)
    audit.migrate()
    return create_app(state=base.derive(settings, audit))


def sqlite_settings(tmp: Path, **kw: object) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp}/audit.db", rules_dir=BUNDLED_RULES, **kw)  # type: ignore[arg-type]
