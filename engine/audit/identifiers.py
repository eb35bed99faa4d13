"""Take raw patient identifiers out of what the audit log stores when input storage is off.

The answer to a call can name the patient: a draft order returned in a suggestion carries its
``subject`` (``Patient/<id>``), a data note may quote the ids it compared. With
``CDSRULES_AUDIT_STORE_INPUTS`` off the promise is that the trail holds no raw identifier (the
keyed hash stands in for it), so before the response is stored every id the call named, the
context's ``patientId``, each Patient resource's id and every ``Patient/<id>`` reference, is
replaced wherever it appears in a string. Over-redaction of the stored copy is the safe error;
the answer the EHR received is untouched.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[patient-id]"
_PATIENT_REF = re.compile(r"Patient/([A-Za-z0-9\-.]{1,64})")


def patient_ids(document: Any, patient_ref: str | None) -> set[str]:
    """Every patient identifier ``document`` names, plus ``patient_ref`` (iterative: any depth)."""
    found = {patient_ref} if patient_ref else set()
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if value.get("resourceType") == "Patient" and isinstance(value.get("id"), str):
                found.add(value["id"])
            if isinstance(value.get("patientId"), str):
                found.add(value["patientId"])
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            found.update(_PATIENT_REF.findall(value))
    return {i for i in found if i}


def scrub(value: Any, ids: set[str]) -> Any:
    """A copy of ``value`` with each of ``ids`` replaced by ``[patient-id]`` in every string."""
    if not ids:
        return value
    pattern = re.compile("|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)))

    def walk(v: Any, depth: int) -> Any:
        if depth > 200:  # deeper than any answer we build; stored as a marker, not walked
            return "[too deep]"
        if isinstance(v, str):
            return pattern.sub(REDACTED, v)
        if isinstance(v, dict):
            return {k: walk(x, depth + 1) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, depth + 1) for x in v]
        return v

    return walk(value, 0)
