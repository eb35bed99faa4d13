"""One call cannot make the service evaluate thousands of orders (D7): a cap with a visible note."""

from __future__ import annotations

import json

import httpx

from engine.runtime.caps import MAX_TARGETS, cap
from tests.cdshooks.fhirdata import baclofen_draft, full_prefetch, hook_request, order_context

SIGN = "/cds-services/muscle-relaxant-dosing"


def test_cap_keeps_the_first_and_says_how_many_were_not_checked() -> None:
    kept, note = cap(list(range(120)), "orders")
    assert kept == list(range(MAX_TARGETS))
    assert note is not None and "70 further orders" in note and str(MAX_TARGETS) in note
    assert cap([1, 2], "orders") == ([1, 2], None)


def test_many_draft_orders_are_capped_and_the_answer_says_so(client: httpx.Client) -> None:
    drafts = [baclofen_draft(f"request-{i}") for i in range(300)]
    body = hook_request("order-sign", order_context(*drafts), full_prefetch())
    r = client.post(SIGN, content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    text = r.text
    assert "250 further draft orders" in text
    small = hook_request("order-sign", order_context(*drafts[:MAX_TARGETS]), full_prefetch())
    base = client.post(SIGN, content=json.dumps(small), headers={"content-type": "application/json"})
    assert len(r.content) < 2 * len(base.content)  # the answer grows with what was evaluated, not with the input
