"""CDS Hooks feedback is stored against the card uuid, once, however often the EHR retries."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.audit.store import AuditStore

CARD = "9368d37b-283f-44a0-93ea-547cebab93ed"
ITEM: dict[str, Any] = {
    "card": CARD,
    "outcome": "overridden",
    "overrideReason": {"reason": {"code": "patient-aware", "system": "http://example.org/reasons"}},
    "outcomeTimestamp": "2026-11-21T10:15:30Z",
}


def test_same_feedback_twice_is_stored_once(store: AuditStore) -> None:
    assert store.record_feedback("baclofen-order-select", ITEM) is True
    assert store.record_feedback("baclofen-order-select", dict(reversed(list(ITEM.items())))) is False
    assert store.feedback_for(CARD) == [ITEM]


def test_a_different_outcome_for_the_same_card_is_kept(store: AuditStore) -> None:
    accepted = {"card": CARD, "outcome": "accepted", "outcomeTimestamp": "2026-11-21T10:20:00Z"}
    assert store.record_feedback("svc", ITEM)
    assert store.record_feedback("svc", accepted)
    assert store.record_feedback("other-service", ITEM)  # the key includes the service
    assert len(store.feedback_for(CARD)) == 3
    assert store.feedback_for("some-other-card") == []


def test_concurrent_retries_store_one_row(store: AuditStore) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.record_feedback("svc", ITEM), range(16)))
    assert results.count(True) == 1
    assert results.count(False) == 15
    assert len(store.feedback_for(CARD)) == 1


def test_feedback_never_keeps_a_token(store: AuditStore) -> None:
    leaky = {**ITEM, "fhirAuthorization": {"access_token": "secret-token-xyz", "token_type": "Bearer"}}
    store.record_feedback("svc", leaky)
    (kept,) = store.feedback_for(CARD)
    assert "secret-token-xyz" not in str(kept)
    assert kept == ITEM
