"""Shared fixtures: the bundled rule pack compiled once, an engine, and an app on a temp database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.compiler.model import CompiledPack
from engine.pipeline import Prepared, prepare_or_raise
from engine.runtime.engine import Engine
from engine.settings import BUNDLED_RULES, Settings
from schemas.api import EvaluateRequest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/audit.db", rules_dir=BUNDLED_RULES)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


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
