"""Every decision is retrievable, months later, with the rules (and versions) that produced it."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi.testclient import TestClient

from engine.audit.store import AuditStore, normalised_sha256
from schemas.api import EvaluateRequest
from tests.audit.records import BODY, make_record


def _evaluate(api: TestClient, **patient: Any) -> dict[str, Any]:
    body = {"patient": {**BODY["patient"], **patient}, "drug": BODY["drug"]}
    r = api.post("/v1/evaluate", json=body)
    assert r.status_code == 200, r.text
    return {"request": body, "response": r.json(), "headers": r.headers}


def test_every_decision_is_retrievable_with_its_rules(api: TestClient) -> None:
    done = _evaluate(api)
    resp = done["response"]
    assert done["headers"]["x-decision-id"] == resp["decision_id"]

    r = api.get(f"/v1/decisions/{resp['decision_id']}")
    assert r.status_code == 200
    rec = r.json()
    assert rec["endpoint"] == "/v1/evaluate"
    assert rec["ruleset"] == resp["ruleset"]
    assert rec["rules_fired"] == [{"rule_id": t["rule_id"], "version": t["version"]} for t in resp["trace"]]
    assert rec["rules_fired"], "this patient makes rules fire; an empty trace would prove nothing"
    assert rec["response"] == resp
    assert rec["drug"] == "baclofen"
    assert rec["latency_ms"] > 0
    # the fingerprint is of the normalised request (defaults filled in), so equal requests hash equal
    normalised = EvaluateRequest.model_validate(done["request"]).model_dump(mode="json")
    assert rec["input_sha256"] == normalised_sha256(normalised)
    created = dt.datetime.fromisoformat(rec["created_at"])
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 600


def test_same_input_same_fingerprint(api: TestClient) -> None:
    a = api.get(f"/v1/decisions/{_evaluate(api)['response']['decision_id']}").json()
    b = api.get(f"/v1/decisions/{_evaluate(api)['response']['decision_id']}").json()
    c = api.get(f"/v1/decisions/{_evaluate(api, weight_kg=90)['response']['decision_id']}").json()
    assert a["decision_id"] != b["decision_id"]
    assert a["input_sha256"] == b["input_sha256"] != c["input_sha256"]


def test_unknown_decision_is_404(api: TestClient) -> None:
    r = api.get("/v1/decisions/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404


def test_list_pages_through_everything_in_order(api: TestClient) -> None:
    made = [_evaluate(api)["response"]["decision_id"] for _ in range(7)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if after:
            params["after"] = after
        page = api.get("/v1/decisions", params=params).json()
        seen += [d["decision_id"] for d in page["items"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            break
        assert pages < 10
    assert seen == made  # oldest first, nothing twice, nothing missing
    assert pages == 3


def test_list_filters_by_rule_id_and_since(api: TestClient) -> None:
    older = _evaluate(api, age_years=67)["response"]
    cutoff = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    younger = _evaluate(api, age_years=40, serum_creatinine_mg_dl=0.9)["response"]
    geriatric = "shared.age-group.older-adult"
    assert geriatric in {t["rule_id"] for t in older["trace"]}
    assert geriatric not in {t["rule_id"] for t in younger["trace"]}

    by_rule = api.get("/v1/decisions", params={"rule_id": geriatric}).json()["items"]
    assert [d["decision_id"] for d in by_rule] == [older["decision_id"]]
    by_time = api.get("/v1/decisions", params={"since": cutoff.isoformat()}).json()["items"]
    assert [d["decision_id"] for d in by_time] == [younger["decision_id"]]
    both = api.get("/v1/decisions", params={"since": cutoff.isoformat(), "rule_id": geriatric}).json()
    assert both["items"] == [] and both["next_after"] is None


def test_since_with_an_offset_means_the_same_instant(store: AuditStore) -> None:
    store.record(make_record(id="first"))
    cutoff = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    store.record(make_record(id="second"))
    in_new_york = cutoff.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert [d["decision_id"] for d in store.list(since=in_new_york)] == ["second"]
    assert [d["decision_id"] for d in store.list(until=cutoff)] == ["first"]


def test_rule_filter_is_exact_not_a_pattern(store: AuditStore) -> None:
    store.record(make_record(rules=[("renal.low_dose", "1.0.0")], id="a"))
    store.record(make_record(rules=[("renal.lowXdose", "1.0.0"), ("other", "2.0.0")], id="b"))
    assert [d["decision_id"] for d in store.list(rule_id="renal.low_dose")] == ["a"]
    assert [d["decision_id"] for d in store.list(rule_id="renal.low%")] == []
    assert [d["decision_id"] for d in store.list(rule_id="other")] == ["b"]
    assert store.get("b")["rules_fired"] == [  # type: ignore[index]
        {"rule_id": "renal.lowXdose", "version": "1.0.0"},
        {"rule_id": "other", "version": "2.0.0"},
    ]


def test_hook_fields_are_kept(store: AuditStore) -> None:
    rec = make_record(
        endpoint="/cds-services/baclofen-order-select",
        hook="order-select",
        hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        service_id="baclofen-order-select",
        response={"cards": [{"uuid": "c1", "indicator": "warning", "summary": "x"}]},
    )
    store.record(rec)
    got = store.get(rec.id)
    assert got is not None
    assert (got["hook"], got["hook_instance"], got["service_id"]) == (
        "order-select",
        "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "baclofen-order-select",
    )
    assert got["response"]["cards"][0]["uuid"] == "c1"


def test_unknown_cursor_is_a_client_error(api: TestClient) -> None:
    r = api.get("/v1/decisions", params={"after": "no-such-decision"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "/after"


def test_limit_is_bounded(api: TestClient) -> None:
    assert api.get("/v1/decisions", params={"limit": 0}).status_code == 422
    assert api.get("/v1/decisions", params={"limit": 100_000}).status_code == 422
