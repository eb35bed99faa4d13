"""Fixtures for the CDS Hooks suite: the running app, a FHIR server stub, spec checks on responses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.settings import BUNDLED_RULES, Settings
from tests.cdshooks.fhirdata import BASE
from tests.cdshooks.servers import RunningApp, StubServer

EHR_ORIGIN = "https://ehr.example.org"


def app_settings(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp}/audit.db",
        "rules_dir": BUNDLED_RULES,
        "audit_store_inputs": True,
        "public_base_url": BASE,
        "cors_origins": [EHR_ORIGIN],
        "fhir_timeout_s": 1.5,
        "fhir_budget_s": 5.0,
        # fixtures and field reports carry labs from 2012 (FHIR examples) to 2024: this app never calls
        # them stale; test_field_reports checks staleness with the default setting
        "renal_lab_max_age_days": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    app = RunningApp(app_settings(tmp_path_factory.mktemp("cds")))
    yield app
    app.close()


@pytest.fixture
def client(running: RunningApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url, timeout=30) as c:
        yield c


@pytest.fixture
def fhir() -> Iterator[StubServer]:
    stub = StubServer()
    yield stub
    stub.close()


def assert_spec_json(value: Any, where: str = "$") -> None:
    """CDS Hooks: no null and no empty string, array or object anywhere in a response."""
    assert value is not None, f"{where} is null"
    if isinstance(value, str):
        assert value != "", f"{where} is an empty string"
    elif isinstance(value, list):
        assert value, f"{where} is an empty array"
        for i, item in enumerate(value):
            assert_spec_json(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        assert value, f"{where} is an empty object"
        for k, v in value.items():
            assert_spec_json(v, f"{where}.{k}")


def cards_of(resp: httpx.Response) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"cards"}
    for card in body["cards"]:
        assert_spec_json(card)
    cards: list[dict[str, Any]] = body["cards"]
    return cards


def card_with_rule(cards: list[dict[str, Any]], rule_id: str) -> dict[str, Any]:
    hits = [c for c in cards if f"- Rule `{rule_id}`" in c.get("detail", "")]
    assert len(hits) == 1, f"expected one card citing {rule_id}, got {[c['summary'] for c in hits]}"
    return hits[0]


def assert_valid_r4(resource: dict[str, Any]) -> None:
    """A suggested resource parses with an independent FHIR library (R4B: R4's MedicationRequest)."""
    from fhir.resources.R4B import construct_fhir_element

    construct_fhir_element(resource["resourceType"], resource)


SEVERITY = {"info": 0, "warning": 1, "critical": 2}


def check_card_invariants(cards: list[dict[str, Any]]) -> None:
    """Every rule of the issue's "Cards" section that holds for any card we send."""
    uuids: list[str] = []
    for card in cards:
        assert len(card["summary"]) < 140
        assert card["indicator"] in SEVERITY
        assert card["detail"].strip()
        source = card["source"]
        assert source["label"]
        assert source["topic"]["system"] and source["topic"]["code"] and source["topic"]["display"]
        if "url" in source:
            assert source["url"].startswith(("http://", "https://"))
        uuids.append(card["uuid"])
        if "suggestions" in card:
            assert card["selectionBehavior"] in ("at-most-one", "any")
            for s in card["suggestions"]:
                uuids.append(s["uuid"])
                assert s["label"]
                for action in s["actions"]:
                    assert action["type"] in ("create", "update", "delete") and action["description"]
                    if "resource" in action:
                        assert_valid_r4(action["resource"])
        else:
            assert "selectionBehavior" not in card
        for reason in card.get("overrideReasons", []):
            assert reason["display"] and reason["code"] and reason["system"]
    assert len(uuids) == len(set(uuids)), "uuids must be unique"
    ranks = [SEVERITY[c["indicator"]] for c in cards]
    assert ranks == sorted(ranks, reverse=True), "cards must be ordered critical > warning > info"
