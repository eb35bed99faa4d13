"""The real app for audit and ops tests, without recompiling the rule pack for every test.

Start-up (compile, lint, examples) takes seconds, so it runs once per session through the app's
own lifespan; each test then gets an app sharing that engine with its own settings and its own,
freshly migrated audit store. The start-up path itself is tested in ``tests/ops`` (real processes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.audit.store import AuditStore
from engine.service.state import AppState
from engine.settings import BUNDLED_RULES, Settings


@pytest.fixture(scope="session")
def served_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppState]:
    base = tmp_path_factory.mktemp("served")
    app = create_app(Settings(database_url=f"sqlite:///{base}/base.db", rules_dir=BUNDLED_RULES))
    with TestClient(app):  # the real start-up now, the real shutdown at the end of the session
        yield app.state.cds


def app_for(settings: Settings, base: AppState) -> FastAPI:
    audit = AuditStore(settings.database_url, settings.audit_hash_key, settings.audit_store_inputs)
    audit.migrate()
    return create_app(state=base.derive(settings, audit))


@pytest.fixture
def make_client(served_state: AppState) -> Iterator[object]:
    """``make_client(settings)`` -> a TestClient; no lifespan, so the shared engine stays open."""
    made: list[FastAPI] = []

    def make(settings: Settings) -> TestClient:
        app = app_for(settings, served_state)
        made.append(app)
        return TestClient(app)

    yield make
    for app in made:
        app.state.cds.audit.dispose()


def sqlite_settings(tmp: Path, **kw: object) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp}/audit.db", rules_dir=BUNDLED_RULES, **kw)  # type: ignore[arg-type]
