"""Nothing silent: an item the terminology cannot place gives a finding naming the check left undone.

One test per kind (medication, condition, allergy), native and over CDS Hooks; the severity is
derived from the rules that read the kind (warning when one of them can contraindicate or is
critical), so the tests check the engine's reasoning rather than a copied number.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.compiler.model import CompiledPack
from engine.runtime.completeness import RULE_PREFIX, dependences
from engine.runtime.engine import Engine
from tests.cdshooks.fhirdata import RXNORM, full_prefetch, hook_request, med_request, order_context
from tests.conftest import request

UNKNOWN_RXCUI = "99999901"  # not an RxNorm code in this pack (nor, at the time of writing, in RxNorm)


def _severity_for(pack: CompiledPack, drug: str, kind: str) -> str:
    rules = [r for r in pack.drugs[drug].rules if r.id in dependences(pack.drugs[drug])[kind].rule_ids]
    serious = any(
        r.then.contraindicated or (r.then.finding is not None and r.then.finding.severity == "critical") for r in rules
    )
    return "warning" if serious else "info"


def _not_checked(findings: list[Any], kind: str) -> list[Any]:
    return [f for f in findings if f.rule_id == RULE_PREFIX + kind]


@pytest.mark.parametrize(
    ("drug", "kind", "patch"),
    [
        ("baclofen", "co_medications", {"co_medications": [{"rxcui": UNKNOWN_RXCUI}]}),
        ("tizanidine", "co_medications", {"co_medications": [{"name": "zorbazepam 5 mg tablet"}]}),
        ("dantrolene", "conditions", {"conditions": ["grumbleflux syndrome"]}),
        (
            "cyclobenzaprine",
            "conditions",
            {"conditions": [{"coding": [{"system": "http://snomed.info/sct", "code": "1"}]}]},
        ),
        ("baclofen", "allergies", {"allergies": [{"name": "quuxamine"}]}),
    ],
)
def test_unrecognised_item_names_the_check_left_undone(
    engine: Engine, pack: CompiledPack, drug: str, kind: str, patch: dict[str, Any]
) -> None:
    deps = dependences(pack.drugs[drug])
    assert kind in deps, f"{drug} has rules reading {kind}; the test needs one"
    answer = engine.evaluate(request(drug, **patch))
    (finding,) = _not_checked(answer.findings, kind)
    (item,) = [u for u in answer.unrecognized if u.field == kind]
    assert item.value in finding.summary or item.value in finding.detail
    assert finding.summary.startswith("Not checked:") and len(finding.summary) < 140
    assert finding.severity == _severity_for(pack, drug, kind)
    assert finding.category == "not-checked"
    # the detail names the rules that would have read the item
    assert all(rid in finding.detail for rid in deps[kind].rule_ids)


def test_conditions_gate_contraindications_so_an_unknown_entry_is_a_warning(engine: Engine, pack: CompiledPack) -> None:
    """The issue's floor: drugs whose labelled contraindications depend on conditions warn."""
    for drug in ("dantrolene", "cyclobenzaprine", "diazepam", "orphenadrine", "metaxalone"):
        answer = engine.evaluate(request(drug, conditions=["grumbleflux syndrome"]))
        (finding,) = _not_checked(answer.findings, "conditions")
        assert finding.severity in ("warning", "critical"), drug


def test_recognised_items_give_no_not_checked_finding(engine: Engine) -> None:
    answer = engine.evaluate(
        request("baclofen", co_medications=[{"name": "gabapentin"}], conditions=["multiple sclerosis"])
    )
    assert not answer.unrecognized
    assert not [f for f in answer.findings if f.rule_id.startswith(RULE_PREFIX)]


def test_native_api_returns_the_finding(client: TestClient) -> None:
    body = {
        "patient": {
            "age_years": 50,
            "sex": "female",
            "weight_kg": 70,
            "egfr_ml_min_1_73m2": 90,
            "co_medications": [{"rxcui": UNKNOWN_RXCUI}],
        },
        "drug": {"name": "baclofen", "action": "start"},
    }
    answer = client.post("/v1/evaluate", json=body).json()
    assert answer["unrecognized"] == [
        {
            "field": "co_medications",
            "pointer": "/patient/co_medications/0",
            "value": f"rxcui {UNKNOWN_RXCUI}",
            "status": "unrecognized",
            "detail": None,
        }
    ]
    assert any(f["rule_id"] == RULE_PREFIX + "co_medications" for f in answer["findings"])
    assert answer["dose"] is not None  # the dose is still given; the gap is said beside it


def _order_select_url(client: TestClient) -> str:
    services = client.get("/cds-services").json()["services"]
    return "/cds-services/" + str(next(s["id"] for s in services if s["hook"] == "order-select"))


def test_cds_hooks_gives_a_not_checked_card(client: TestClient) -> None:
    med = med_request("m1", "", rxcui=UNKNOWN_RXCUI)
    med["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": UNKNOWN_RXCUI}]}  # code, no name
    draft = med_request("request-1", "Baclofen 10 MG Oral Tablet", status="draft", dose=5, per_day=3)
    body = hook_request(
        "order-select",
        order_context(draft, selected=["MedicationRequest/request-1"]),
        full_prefetch(egfr=90.0, meds=[med]),
    )
    cards = client.post(_order_select_url(client), json=body).json()["cards"]
    hits = [c for c in cards if "Not checked" in c["summary"] and "interactions" in c["summary"]]
    assert hits, [c["summary"] for c in cards]
    assert UNKNOWN_RXCUI in hits[0]["summary"] + hits[0]["detail"]
