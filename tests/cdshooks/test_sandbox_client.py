"""The HL7 CDS Hooks sandbox's flows, with the sandbox's own service registry: keyed by service id.

The sandbox stores discovered services in an object keyed by ``id`` and picks, for each hook, the
services whose ``hook`` matches; a second entry with the same id overwrites the first. With one id
for two hooks, Rx View (order-select) never called us. This client reproduces that registry, then
runs patient-view, Rx View (order-select), Rx Sign (order-sign), accepts a suggestion (applying its
``update`` to the draft as the sandbox does) and overrides a card with a reason.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.cdshooks.conftest import cards_of, check_card_invariants
from tests.cdshooks.fhirdata import PID, baclofen_draft, full_prefetch, hook_request, med_request, order_context
from tests.cdshooks.servers import RunningApp


class SandboxClient:
    def __init__(self, client: httpx.Client) -> None:
        self.http = client
        self.registry: dict[str, dict[str, Any]] = {}
        for service in client.get("/cds-services").json()["services"]:
            self.registry[service["id"]] = service  # last one wins, as in the sandbox

    def services_for(self, hook: str) -> list[str]:
        return [sid for sid, s in self.registry.items() if s["hook"] == hook]

    def call(self, hook: str, context: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for sid in self.services_for(hook):
            body = hook_request(hook, context, full_prefetch())
            cards = cards_of(self.http.post(f"/cds-services/{sid}", json=body))
            check_card_invariants(cards)
            out[sid] = cards
        return out

    def feedback(self, sid: str, item: dict[str, Any]) -> None:
        assert self.http.post(f"/cds-services/{sid}/feedback", json={"feedback": [item]}).status_code == 200


def _all(answers: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [c for cards in answers.values() for c in cards]


def test_every_sandbox_flow_reaches_a_service(client: httpx.Client, running: RunningApp) -> None:
    sandbox = SandboxClient(client)
    for hook in ("patient-view", "order-select", "order-sign"):
        assert sandbox.services_for(hook), f"no service for {hook} in an id-keyed registry"

    # patient-view on a chart with an active baclofen prescription
    active = med_request("active-bac", "baclofen 10 MG Oral Tablet", dose=10, per_day=3)
    view_prefetch = full_prefetch(meds=[active])
    view = {
        sid: cards_of(client.post(f"/cds-services/{sid}", json=hook_request("patient-view", {}, view_prefetch)))
        for sid in sandbox.services_for("patient-view")
    }
    assert any(view.values()), "patient-view got no cards for an active baclofen prescription"

    # Rx View: the prescriber picks baclofen; the sandbox sends order-select with the selection
    ctx = order_context(baclofen_draft(), selected=["MedicationRequest/request-123"])
    select = sandbox.call("order-select", ctx)
    select_cards = _all(select)
    assert select_cards, "Rx View got no cards"
    sid, card = next((s, c) for s, cards in select.items() for c in cards if "suggestions" in c)

    # accept: the sandbox applies the update action to its draft, then posts feedback
    suggestion = card["suggestions"][0]
    update = next(a for a in suggestion["actions"] if a["type"] == "update")
    accepted = update["resource"]
    assert accepted["resourceType"] == "MedicationRequest" and accepted["id"] == "request-123"
    sandbox.feedback(
        sid,
        {
            "card": card["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": suggestion["uuid"]}],
            "outcomeTimestamp": "2026-12-04T01:00:00Z",
        },
    )
    assert len(running.state.audit.feedback_for(card["uuid"])) == 1

    # Rx Sign with the accepted draft, then an override with the card's own reason
    sign = sandbox.call("order-sign", order_context(accepted))
    sign_cards = _all(sign)
    assert sign_cards, "Rx Sign got no cards"
    sign_sid = next(iter(sign))
    target = sign[sign_sid][0]
    item: dict[str, Any] = {"card": target["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-04T01:01:00Z"}
    if target.get("overrideReasons"):
        item["overrideReason"] = {"reason": target["overrideReasons"][0]}
    sandbox.feedback(sign_sid, item)
    stored = running.state.audit.feedback_for(target["uuid"])
    assert [s["outcome"] for s in stored] == ["overridden"]
    assert PID  # the sandbox's patient is the fixture patient
