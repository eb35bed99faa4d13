"""With input storage off, neither the stored answer nor the logs carry a raw patient id (D5).

Before, a suggestion's draft order kept ``subject: Patient/<id>`` and a data note quoted both ids;
httpx's INFO line logged each FHIR search URL with ``?patient=<id>``.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.audit.store import AuditStore
from engine.observability.logs import configure_logging
from tests.audit.conftest import HASH_KEY
from tests.audit.records import make_record
from tests.audit.test_phi import HOOK_REQUEST, PATIENT, _everything_stored

OTHER = "MRN-9913-other"
RESPONSE: dict[str, Any] = {
    "cards": [
        {
            "summary": "Baclofen dose",
            "suggestions": [
                {
                    "actions": [
                        {
                            "resource": {
                                "resourceType": "MedicationRequest",
                                "subject": {"reference": f"Patient/{PATIENT}"},
                            }
                        }
                    ]
                }
            ],
            "detail": f"Patient resource id '{OTHER}' differs from context.patientId '{PATIENT}'",
        }
    ]
}
REQUEST = {**HOOK_REQUEST, "prefetch": {"patient": {"resourceType": "Patient", "id": OTHER}}}


def test_stored_answer_names_no_patient_when_inputs_are_off(store: AuditStore) -> None:
    rec = make_record(patient_ref=PATIENT, input_document=REQUEST, response=RESPONSE)
    store.record(rec)
    dump = _everything_stored(store)
    assert PATIENT not in dump and OTHER not in dump
    got = store.get(rec.id)
    assert got is not None
    assert got["response"]["cards"][0]["summary"] == "Baclofen dose"  # the rest of the answer is kept
    assert "[patient-id]" in got["response"]["cards"][0]["detail"]


def test_stored_answer_is_whole_when_inputs_are_on(db_url: str) -> None:
    store = AuditStore(db_url, HASH_KEY, store_inputs=True)
    store.migrate()
    rec = make_record(patient_ref=PATIENT, input_document=REQUEST, response=RESPONSE)
    store.record(rec)
    got = store.get(rec.id)
    assert got is not None and got["response"] == RESPONSE
    store.dispose()


def test_httpx_request_lines_are_not_logged() -> None:
    configure_logging("INFO")
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert not logging.getLogger("httpcore").isEnabledFor(logging.INFO)
