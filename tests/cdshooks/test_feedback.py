"""Feedback: validated field by field, stored once however often the EHR retries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.cdshooks.conftest import cards_of
from tests.cdshooks.fhirdata import baclofen_draft, full_prefetch, hook_request, order_context
from tests.cdshooks.servers import RunningApp

DOSING = "/cds-services/muscle-relaxant-dosing"
FEEDBACK = f"{DOSING}/feedback"


def _dose_card(client: httpx.Client) -> dict[str, Any]:
    ctx = order_context(baclofen_draft(), selected=["MedicationRequest/request-123"])
    cards = cards_of(client.post(DOSING, json=hook_request("order-select", ctx, full_prefetch())))
    return next(c for c in cards if "suggestions" in c)


def test_accepted_suggestion_is_stored_once(client: httpx.Client, running: RunningApp) -> None:
    card = _dose_card(client)
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-11-21T10:05:31Z",
    }
    first = client.post(FEEDBACK, json={"feedback": [item]})
    assert first.status_code == 200 and first.content == b""
    again = client.post(FEEDBACK, json={"feedback": [dict(reversed(list(item.items())))]})  # same item, other key order
    assert again.status_code == 200
    stored = running.state.audit.feedback_for(card["uuid"])
    assert len(stored) == 1
    assert stored[0]["acceptedSuggestions"] == [{"id": card["suggestions"][0]["uuid"]}]


def test_override_with_reason_and_unknown_fields(client: httpx.Client, running: RunningApp) -> None:
    card = _dose_card(client)
    reason = card["overrideReasons"][0]
    body = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": reason, "userComment": "Discussed with nephrology."},
                "outcomeTimestamp": "2026-11-21T10:06:00Z",
                "extension": {"com.example.ui": "sidebar"},
            },
            {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:07:00Z"},
        ]
    }
    assert client.post(FEEDBACK, json=body).status_code == 200
    stored = sorted(running.state.audit.feedback_for(card["uuid"]), key=lambda i: i["outcomeTimestamp"])
    assert [s["outcomeTimestamp"] for s in stored] == ["2026-11-21T10:06:00Z", "2026-11-21T10:07:00Z"]
    assert stored[0]["overrideReason"]["reason"]["code"] == reason["code"]
    assert "extension" not in stored[0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": "yes"}, "feedback"),
        ({"feedback": [{"outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}]}, "feedback[0].card"),
        (
            {"feedback": [{"card": "c", "outcome": "dismissed", "outcomeTimestamp": "2026-11-21T10:00:00Z"}]},
            "feedback[0].outcome",
        ),
        (
            {"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-21T10:00:00Z"}]},
            "feedback[0].acceptedSuggestions",
        ),
        (
            {
                "feedback": [
                    {
                        "card": "c",
                        "outcome": "accepted",
                        "acceptedSuggestions": [{}],
                        "outcomeTimestamp": "2026-11-21T10:00:00Z",
                    }
                ]
            },
            "feedback[0].acceptedSuggestions[0].id",
        ),
        ({"feedback": [{"card": "c", "outcome": "overridden"}]}, "feedback[0].outcomeTimestamp"),
        (
            {"feedback": [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "yesterday"}]},
            "feedback[0].outcomeTimestamp",
        ),
        (
            {
                "feedback": [
                    {
                        "card": "c",
                        "outcome": "overridden",
                        "outcomeTimestamp": "2026-11-21T10:00:00Z",
                        "overrideReason": {"reason": {"code": "x"}},
                    }
                ]
            },
            "feedback[0].overrideReason.reason.system",
        ),
    ],
)
def test_invalid_feedback_names_the_field(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    resp = client.post(FEEDBACK, json=body)
    assert resp.status_code == 400, resp.text
    outcome = resp.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert field in {e for i in outcome["issue"] for e in i.get("expression", [])}


def test_malformed_feedback_json(client: httpx.Client) -> None:
    resp = client.post(FEEDBACK, content=b"{feedback:", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["issue"][0]["code"] == "structure"
