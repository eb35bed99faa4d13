"""FHIR R4 resources and CDS Hooks requests shaped like what real EHRs and the sandbox send."""

from __future__ import annotations

import uuid
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
PID = "pat-1"
BASE = "https://cds.example.org"  # the public base URL the EHR calls (JWT aud)


def patient(pid: str = PID, gender: str = "female", born: str = "1961-03-14") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "active": True,
        "gender": gender,
        "birthDate": born,
        "name": [{"family": "Example", "given": ["Pat"]}],
    }


def observation(code: str, value: float, unit: str, when: str, pid: str = PID, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{code}-{when}",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
        ],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        **extra,
    }


def pregnancy(answer_code: str, display: str, when: str = "2024-05-01") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"preg-{when}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "82810-3"}]},
        "effectiveDateTime": when,
        "valueCodeableConcept": {"coding": [{"system": LOINC, "code": answer_code, "display": display}]},
    }


def med_request(
    rid: str,
    text: str,
    *,
    status: str = "active",
    rxcui: str | None = None,
    dose: float | None = None,
    unit: str = "mg",
    per_day: int | None = None,
    r4_dose: bool = True,
) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": text}
    if rxcui:
        concept["coding"] = [{"system": RXNORM, "code": rxcui, "display": text}]
    mr: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": {"reference": f"Patient/{PID}"},
        "authoredOn": "2024-06-01",
    }
    if dose is not None and per_day is not None:
        quantity = {"value": dose, "unit": unit, "system": UCUM, "code": unit}
        dosage: dict[str, Any] = {"timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}}
        if r4_dose:
            dosage["doseAndRate"] = [{"doseQuantity": quantity}]
        else:
            dosage["doseQuantity"] = quantity  # STU3 shape, as the sandbox sends it
        mr["dosageInstruction"] = [dosage]
    return mr


def bundle(*resources: dict[str, Any], typed: bool = True) -> dict[str, Any]:
    b: dict[str, Any] = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    if typed:
        b["type"] = "searchset"
    return b


def operation_outcome(text: str = "search failed") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": text}],
    }


def full_prefetch(
    egfr: float | None = 42.0, meds: list[dict[str, Any]] | None = None, **override: Any
) -> dict[str, Any]:
    """Every template key answered, the way an EHR that honours all of them would."""
    data: dict[str, Any] = {
        "patient": patient(),
        "egfr": bundle(observation("33914-3", egfr, "mL/min/{1.73_m2}", "2024-05-01"))
        if egfr is not None
        else bundle(),
        "creatinine": bundle(),
        "weight": bundle(observation("29463-7", 70, "kg", "2024-05-01")),
        "height": bundle(observation("8302-2", 165, "cm", "2024-05-01")),
        "pregnancy": bundle(),
        "conditions": bundle(),
        "medications": bundle(*(meds or [])),
        "statements": bundle(),
        "breastfeeding": bundle(),
        "bilirubin": bundle(),
        "ast": bundle(),
        "alt": bundle(),
        "albumin": bundle(),
        "inr": bundle(),
        "child_pugh": bundle(),
        "allergies": bundle(),
    }
    data.update(override)
    return data


def hook_request(
    hook: str,
    context: dict[str, Any],
    prefetch: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/example", "patientId": PID, **context},
        **extra,
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def order_context(*drafts: dict[str, Any], selected: list[str] | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"draftOrders": bundle(*drafts, typed=False)}
    if selected is not None:
        ctx["selections"] = selected
    return ctx


def baclofen_draft(rid: str = "request-123", dose: float = 20, per_day: int = 3) -> dict[str, Any]:
    return med_request(rid, "Baclofen 10 MG Oral Tablet", status="draft", dose=dose, per_day=per_day)
