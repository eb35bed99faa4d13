"""Override analytics: feedback sent through the CDS Hooks endpoint comes back as exact counts.

A few hundred real cards (from real hook calls on the bundled pack) get a planned outcome each:
no feedback, accepted (cards with a suggestion), overridden with each coded reason, with a
comment, or with no reason. The test counts its own plan, keyed by the rule the card's detail
names, and the report must agree on every number, on both database backends.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from engine.audit.analytics import Period, summary, wilson
from engine.cdshooks.cards import OVERRIDE_REASONS
from tests.apps import MakeClient
from tests.audit.conftest import app_settings
from tests.cdshooks.fhirdata import baclofen_draft, full_prefetch, hook_request, order_context

DOSING = "/cds-services/muscle-relaxant-dosing"
REASONS = [r.code for r in OVERRIDE_REASONS]
PLANS = ["none", "accept", *(f"override:{r}" for r in REASONS), "comment", "bare"]


def _rule_of(card: dict[str, Any]) -> str | None:
    detail = card.get("detail", "")
    m = re.search(r"- Rule `([^`]+)`", detail) or re.search(r"\*\*Rules:\*\* `([^`]+)`", detail)
    return m.group(1) if m else None


def _item(card: dict[str, Any], plan: str, n: int) -> dict[str, Any] | None:
    ts = f"2026-12-0{1 + n % 3}T10:{n % 60:02d}:00Z"
    if plan == "none":
        return None
    if plan == "accept":
        return {
            "card": card["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
            "outcomeTimestamp": ts,
        }
    item: dict[str, Any] = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": ts}
    if plan.startswith("override:"):
        code = plan.split(":", 1)[1]
        item["overrideReason"] = {"reason": {"code": code, "system": "urn:cdsrules:override-reason"}}
    elif plan == "comment":
        item["overrideReason"] = {
            "reason": {"code": REASONS[0], "system": "urn:cdsrules:override-reason"},
            "userComment": "discussed with the renal team",
        }
    return item


def drive(api: TestClient, calls: int) -> dict[tuple[str | None, str, str], dict[str, Any]]:
    """Hook calls and feedback; the expected numbers, counted from what was sent."""
    expected: dict[tuple[str | None, str, str], dict[str, Any]] = defaultdict(
        lambda: {"shown": 0, "accepted": 0, "overridden": 0, "reasons": Counter(), "comments": 0, "sugg": 0}
    )
    n = 0
    egfrs = [42.0, 25.0, 70.0, 12.0, 95.0]
    for i in range(calls):
        ctx = order_context(baclofen_draft(dose=10 + 5 * (i % 4)), selected=["MedicationRequest/request-123"])
        resp = api.post(DOSING, json=hook_request("order-select", ctx, full_prefetch(egfr=egfrs[i % len(egfrs)])))
        assert resp.status_code == 200, resp.text
        items = []
        for card in resp.json()["cards"]:
            key = (_rule_of(card), card["indicator"], card["source"]["topic"]["code"])
            exp = expected[key]
            exp["shown"] += 1
            exp["sugg"] += bool(card.get("suggestions"))
            plan = PLANS[n % len(PLANS)]
            if plan == "accept" and not card.get("suggestions"):
                plan = "bare"  # nothing to accept on this card
            n += 1
            item = _item(card, plan, n)
            if item is None:
                continue
            items.append(item)
            if item["outcome"] == "accepted":
                exp["accepted"] += 1
            else:
                exp["overridden"] += 1
                reason = item.get("overrideReason", {}).get("reason", {}).get("code", "(none given)")
                exp["reasons"][reason] += 1
                exp["comments"] += "userComment" in item.get("overrideReason", {})
        if items:
            r = api.post(f"{DOSING}/feedback", json={"feedback": items})
            assert r.status_code == 200, r.text
            # a retry of the same items must not count twice
            assert api.post(f"{DOSING}/feedback", json={"feedback": items}).status_code == 200
    return expected


def test_report_counts_match_the_feedback_sent(api: TestClient) -> None:
    expected = drive(api, 100)
    audit = api.app.state.cds.audit  # type: ignore[attr-defined]
    got = summary(audit.engine, Period())
    assert sum(e["shown"] for e in expected.values()) >= 200
    assert {(c["rule_id"], c["severity"], c["topic"]) for c in got["cards"]} == set(expected)
    for card in got["cards"]:
        exp = expected[(card["rule_id"], card["severity"], card["topic"])]
        responded = exp["accepted"] + exp["overridden"]
        assert card["shown"] == exp["shown"]
        assert card["accepted"] == exp["accepted"]
        assert card["overridden"] == exp["overridden"]
        assert card["responded"] == responded
        assert card["override_reasons"] == dict(exp["reasons"])
        assert card["comments"] == exp["comments"]
        assert card["with_suggestion"] == exp["sugg"]
        if responded:
            assert card["override_rate"] == pytest.approx(exp["overridden"] / responded)
            low, high = card["override_rate_ci95"]
            assert low <= card["override_rate"] <= high
        if exp["sugg"]:
            assert card["suggestion_acceptance_rate"] == pytest.approx(exp["accepted"] / exp["sugg"])
    totals = got["totals"]
    assert totals["shown"] == sum(e["shown"] for e in expected.values())
    assert totals["overridden"] == sum(e["overridden"] for e in expected.values())
    assert sum(w["shown"] for w in got["weekly"]) == totals["shown"]
    assert sum(v["overridden"] for v in got["versions"]) == totals["overridden"]
    every_reason = Counter[str]()
    for e in expected.values():
        every_reason.update(e["reasons"])
    assert set(every_reason) == {*REASONS, "(none given)"}  # each reason was exercised


def test_period_and_rule_filters(api: TestClient) -> None:
    expected = drive(api, 10)
    audit = api.app.state.cds.audit  # type: ignore[attr-defined]
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert summary(audit.engine, Period(since=future))["totals"]["shown"] == 0
    assert summary(audit.engine, Period(until=future))["totals"]["shown"] == sum(e["shown"] for e in expected.values())
    rule = next(k[0] for k in expected if k[0])
    only = summary(audit.engine, Period(rule_id=rule))
    assert {c["rule_id"] for c in only["cards"]} == {rule}
    assert only["totals"]["shown"] == sum(e["shown"] for k, e in expected.items() if k[0] == rule)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (1, 100, 0.0018, 0.0545)],
)
def test_wilson_interval_matches_published_values(k: int, n: int, low: float, high: float) -> None:
    got = wilson(k, n)
    assert got is not None
    assert got[0] == pytest.approx(low, abs=1e-4)
    assert got[1] == pytest.approx(high, abs=1e-4)


def test_wilson_of_nothing_is_none() -> None:
    assert wilson(0, 0) is None


ADMIN = "a" * 40


@pytest.fixture
def admin_api(db_url: str, make_client: MakeClient) -> TestClient:
    return make_client(app_settings(db_url, admin_token=ADMIN))


def test_admin_endpoint_serves_the_same_numbers(admin_api: TestClient) -> None:
    drive(admin_api, 8)
    audit = admin_api.app.state.cds.audit  # type: ignore[attr-defined]
    assert admin_api.get("/v1/admin/analytics").status_code == 401
    wrong = admin_api.get("/v1/admin/analytics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    got = admin_api.get("/v1/admin/analytics", headers={"authorization": f"Bearer {ADMIN}"})
    assert got.status_code == 200
    assert got.json() == json.loads(json.dumps(summary(audit.engine, Period())))
    assert got.json()["totals"]["shown"] > 0


def test_admin_analytics_is_off_without_a_token(api: TestClient) -> None:
    assert api.get("/v1/admin/analytics", headers={"authorization": f"Bearer {ADMIN}"}).status_code == 403


def _counter(rule_id: str, severity: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "cdsrules_card_outcomes_total", {"rule_id": rule_id, "severity": severity, "outcome": outcome}
    )
    return value or 0.0


def test_prometheus_counts_shown_accepted_overridden(api: TestClient) -> None:
    before: dict[tuple[str, str, str], float] = {}
    audit = api.app.state.cds.audit  # type: ignore[attr-defined]
    # the counters are process-wide: compare their increase with what this test drove
    for outcome in ("shown", "accepted", "overridden"):
        for sev in ("info", "warning", "critical"):
            for rule in _rules_in_registry():
                before[(rule, sev, outcome)] = _counter(rule, sev, outcome)
    drive(api, 20)
    got = summary(audit.engine, Period())
    for card in got["cards"]:
        rule = card["rule_id"] or ""
        for outcome in ("shown", "accepted", "overridden"):
            grown = _counter(rule, card["severity"], outcome) - before.get((rule, card["severity"], outcome), 0.0)
            same_label = [c for c in got["cards"] if (c["rule_id"] or "") == rule and c["severity"] == card["severity"]]
            assert grown == sum(c[outcome] for c in same_label), (rule, card["severity"], outcome)


def _rules_in_registry() -> set[str]:
    out = {""}
    for metric in REGISTRY.collect():
        if metric.name == "cdsrules_card_outcomes":
            out.update(s.labels["rule_id"] for s in metric.samples)
    return out
