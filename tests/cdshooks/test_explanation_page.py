"""Cards link to a page explaining the decision (CDS Hooks Link, type absolute): signed, escaped."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from tests.cdshooks.fhirdata import PID, bundle, full_prefetch, hook_request, med_request, order_context

SCRIPT = "<script>alert(1)</script> flux"


def _cards(client: TestClient) -> list[dict[str, Any]]:
    services = client.get("/cds-services").json()["services"]
    url = "/cds-services/" + str(next(s["id"] for s in services if s["hook"] == "order-select"))
    oxy = med_request("m1", "oxycodone hydrochloride 5 MG Oral Tablet", rxcui="1049621")
    problem = {
        "resourceType": "Condition",
        "id": "c1",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"text": SCRIPT},
        "subject": {"reference": f"Patient/{PID}"},
    }
    draft = med_request("request-1", "Baclofen 10 MG Oral Tablet", status="draft", dose=5, per_day=3)
    body = hook_request(
        "order-select",
        order_context(draft, selected=["MedicationRequest/request-1"]),
        full_prefetch(egfr=90.0, meds=[oxy], conditions=bundle(problem)),
    )
    response = client.post(url, json=body)
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


def test_finding_cards_link_to_a_signed_explanation_page(client: TestClient) -> None:
    cards = _cards(client)
    linked = [c for c in cards if c.get("links")]
    assert linked, [c["summary"] for c in cards]
    assert all("links" not in c for c in cards if c["source"]["topic"]["code"] == "dosing")
    link = linked[0]["links"][0]
    assert link["type"] == "absolute" and link["label"]
    page = client.get(urlsplit(link["url"]).path + "?" + urlsplit(link["url"]).query)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    interaction = next(c for c in cards if c["source"]["topic"]["code"] == "drug-interaction")
    assert "baclofen.interaction.opioid" in text  # the rule, in the trace
    assert interaction["source"]["label"].split(" ")[0] in text  # its source
    # text from the EHR is shown escaped, never as markup
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_a_wrong_signature_or_unknown_decision_is_not_found(client: TestClient) -> None:
    link = next(c for c in _cards(client) if c.get("links"))["links"][0]["url"]
    path, query = urlsplit(link).path, urlsplit(link).query
    assert client.get(f"{path}?sig={'0' * 32}").status_code == 404
    assert client.get(path).status_code == 404
    other = path.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    assert client.get(f"{other}?{query}").status_code == 404
