"""Shared fixtures: the bundled pack through the gate once, engines, and apps on a temp database.

``client`` is a TestClient on an app that shares the session's prepared engine (``tests/apps.py``)
with a fresh SQLite audit store per test, so a test costs a migration, not a start-up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engine.audit.store import AuditStore
from engine.compiler.model import CompiledPack
from engine.pipeline import Prepared, prepare_or_raise
from engine.runtime.engine import Engine
from engine.service.state import AppState, state_from
from engine.settings import BUNDLED_RULES, Settings
from schemas.api import EvaluateRequest
from tests.apps import MakeClient, app_for
from tests.needs import REPO, shared_path

__all__ = ["REPO", "request"]

# Starlette's TestClient sends ``Host: testserver``; with authentication off the app accepts only
# loopback and configured hosts (engine/api/browser_guard.py), so the test host is configured.
os.environ.setdefault("CDSRULES_ALLOWED_HOSTS", '["testserver"]')


@pytest.fixture(scope="session")
def prepared() -> Iterator[Prepared]:
    """The bundled pack through the server's gate, once per session (its examples ran there)."""
    result = prepare_or_raise(BUNDLED_RULES)
    yield result
    result.close()


@pytest.fixture(scope="session")
def pack(prepared: Prepared) -> CompiledPack:
    return prepared.pack


@pytest.fixture(scope="session")
def engine(prepared: Prepared) -> Engine:
    return prepared.engine


@pytest.fixture(scope="session")
def reference_engine(pack: CompiledPack) -> Engine:
    return Engine(pack, backend="reference")


@pytest.fixture(scope="session")
def synthea() -> Path:
    """The Synthea sample bundles, read in place (skips, or fails under CI, when absent)."""
    return shared_path("data", "synthea")


@pytest.fixture(scope="session")
def served_state(prepared: Prepared, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppState]:
    """The app's state on the session's prepared pack; start-up itself is tested in tests/ops."""
    base = tmp_path_factory.mktemp("served")
    settings = Settings(database_url=f"sqlite:///{base}/base.db", rules_dir=BUNDLED_RULES)
    audit = AuditStore(settings.database_url, settings.audit_hash_key, settings.audit_store_inputs)
    audit.migrate()
    state = state_from(settings, prepared, audit)
    yield state
    state.reloader.stop()
    audit.dispose()  # the engine belongs to ``prepared``, closed with it


@pytest.fixture
def make_client(served_state: AppState) -> Iterator[MakeClient]:
    """``make_client(settings)`` -> a TestClient; no lifespan, so the shared engine stays open."""
    made: list[FastAPI] = []

    def make(settings: Settings) -> TestClient:
        app = app_for(settings, served_state)
        made.append(app)
        return TestClient(app)

    yield make
    for app in made:
        app.state.cds.audit.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/audit.db", rules_dir=BUNDLED_RULES)


@pytest.fixture
def client(settings: Settings, make_client: MakeClient) -> TestClient:
    return make_client(settings)


def request(drug: str = "baclofen", action: str = "start", **patient: Any) -> EvaluateRequest:
    """A request with a plausible adult default patient, overridden by keyword arguments."""
    base: dict[str, Any] = {
        "age_years": 45,
        "sex": "male",
        "weight_kg": 80,
        "egfr_ml_min_1_73m2": 100,
        "hepatic_impairment": "none",
    }
    base.update(patient)
    return EvaluateRequest.model_validate({"patient": base, "drug": {"name": drug, "action": action}})
