"""PHI minimisation: a keyed hash instead of the patient id, no input unless asked, never a token."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import sqlalchemy as sa

from engine.audit.store import AuditStore
from tests.audit.conftest import HASH_KEY
from tests.audit.records import BODY, make_record

PATIENT = "MRN-4471-2210"
TOKEN = "eyJhbGciOiJSUzM4NCJ9.c2VjcmV0LXRva2Vu.c2ln"
HOOK_REQUEST: dict[str, Any] = {
    "hook": "order-select",
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "context": {"patientId": PATIENT, "userId": "Practitioner/1"},
    "fhirAuthorization": {"access_token": TOKEN, "token_type": "Bearer", "scope": "patient/*.read"},
    "prefetch": {"patient": {"resourceType": "Patient", "id": PATIENT}},
}


def _everything_stored(store: AuditStore) -> str:
    """Every cell of every audit table as text: what someone with database access could read."""
    with store.engine.connect() as conn:
        cells = []
        for table in ("decisions", "decision_rules", "feedback"):
            cells += [str(tuple(row)) for row in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    return "\n".join(cells)


def test_patient_id_is_only_a_keyed_hash(store: AuditStore) -> None:
    rec = make_record(patient_ref=PATIENT, input_document=HOOK_REQUEST)
    store.record(rec)
    got = store.get(rec.id)
    assert got is not None
    assert got["patient_ref_hash"] == hmac.new(HASH_KEY.encode(), PATIENT.encode(), hashlib.sha256).hexdigest()
    assert got["patient_ref_hash"] != hashlib.sha256(PATIENT.encode()).hexdigest()  # keyed, not a plain hash
    assert got["input_document"] is None
    dump = _everything_stored(store)
    assert got["patient_ref_hash"] in dump
    assert PATIENT not in dump
    assert TOKEN not in dump


def test_another_key_gives_another_hash(db_url: str) -> None:
    a, b = AuditStore(db_url, "key-a"), AuditStore(db_url, "key-b")
    assert a.patient_hash(PATIENT) != b.patient_hash(PATIENT)
    assert a.patient_hash(None) is None
    a.dispose()
    b.dispose()


def test_input_is_kept_only_when_asked_and_never_with_its_token(db_url: str) -> None:
    store = AuditStore(db_url, HASH_KEY, store_inputs=True)
    store.migrate()
    rec = make_record(patient_ref=PATIENT, input_document=HOOK_REQUEST)
    store.record(rec)
    got = store.get(rec.id)
    assert got is not None
    kept = got["input_document"]
    assert kept["context"]["patientId"] == PATIENT  # the operator chose to keep inputs
    assert "fhirAuthorization" not in kept
    assert TOKEN not in _everything_stored(store)
    store.dispose()


def test_fingerprint_ignores_the_token(store: AuditStore) -> None:
    other_token = {**HOOK_REQUEST, "fhirAuthorization": {"access_token": "another", "token_type": "Bearer"}}
    a, b = make_record(input_document=HOOK_REQUEST), make_record(input_document=other_token)
    store.record(a)
    store.record(b)
    assert store.get(a.id)["input_sha256"] == store.get(b.id)["input_sha256"]  # type: ignore[index]


def test_api_decisions_hold_no_input_by_default(store: AuditStore) -> None:
    rec = make_record(input_document=BODY)
    store.record(rec)
    assert store.get(rec.id)["input_document"] is None  # type: ignore[index]
