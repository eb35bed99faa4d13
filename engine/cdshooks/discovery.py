"""The services we offer and the FHIR data each asks the EHR to prefetch.

The dosing service serves two hooks (order-select and order-sign). By default each hook is listed
under its own id (``muscle-relaxant-dosing-order-select``, ``muscle-relaxant-dosing-order-sign``)
because id-keyed clients (the HL7 CDS Hooks sandbox, HAPI-style registries) keep one entry per id
and silently drop the second hook of a shared id. CDS Hooks 2.0 §Discovery
(https://cds-hooks.hl7.org/2.0/#discovery) defines ``id`` per service entry, the ``{id}`` of
``{baseUrl}/cds-services/{id}``, and does not require entries to have distinct ids, so the one-id
form stays available (``CDSRULES_CDS_DISCOVERY=shared``). The shared id is always callable, so an
EHR registered against it keeps working after the default changed. Prefetch templates
use plain R4 search syntax and only the ``{{context.patientId}}`` token, which every client that
prefetches at all supports. Labs ask for the newest result only (``_sort=-date&_count=1``) across
all the codes that mean the same thing, so the EHR returns one Observation, not a history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.cdshooks.models import ServiceDescription
from engine.fhir.breastfeeding import BREASTFEEDING_STATUS_CODE
from engine.fhir.child_pugh import CHILD_PUGH_PANEL
from engine.fhir.liver_tests import ALBUMIN, ALT, AST, BILIRUBIN_TOTAL, INR_CODES
from engine.fhir.observations import (
    CREATININE_MASS_CODES,
    CREATININE_MOLAR_CODES,
    EGFR_CODES,
    HEIGHT_CODE,
    PREGNANCY_STATUS_CODE,
    WEIGHT_CODE,
)
from engine.fhir.values import LOINC

PATIENT_TOKEN = "{{context.patientId}}"


# Results that stand (R4 observation-status): a newer entered-in-error or cancelled one must not
# take the single _count=1 slot and hide the valid result before it.
RESULT_STATUSES = "final,amended,corrected,preliminary"


def _latest(codes: tuple[str, ...]) -> str:
    joined = ",".join(f"{LOINC}|{c}" for c in codes)
    return f"Observation?patient={PATIENT_TOKEN}&code={joined}&status={RESULT_STATUSES}&_sort=-date&_count=1"


# The Medication a medicationReference names, in the same search (US Core MedicationRequest profile:
# servers SHALL support _include=MedicationRequest:medication); what is still missing is read from
# fhirServer by engine.cdshooks.medrefs.
_MEDICATION_INCLUDE = "_include=MedicationRequest:medication"
_STATEMENT_INCLUDE = "_include=MedicationStatement:medication"


PREFETCH: dict[str, str] = {
    "patient": f"Patient/{PATIENT_TOKEN}",
    "egfr": _latest(EGFR_CODES),
    "creatinine": _latest(CREATININE_MASS_CODES + CREATININE_MOLAR_CODES),
    "weight": _latest((WEIGHT_CODE,)),
    "height": _latest((HEIGHT_CODE,)),
    "pregnancy": _latest((PREGNANCY_STATUS_CODE,)),
    "breastfeeding": _latest((BREASTFEEDING_STATUS_CODE,)),
    "bilirubin": _latest((BILIRUBIN_TOTAL,)),
    "ast": _latest((AST,)),
    "alt": _latest((ALT,)),
    "albumin": _latest((ALBUMIN,)),
    "inr": _latest(INR_CODES),
    "child_pugh": _latest((CHILD_PUGH_PANEL,)),
    "conditions": f"Condition?patient={PATIENT_TOKEN}&clinical-status=active",
    "medications": f"MedicationRequest?patient={PATIENT_TOKEN}&status=active&{_MEDICATION_INCLUDE}",
    "statements": f"MedicationStatement?patient={PATIENT_TOKEN}&status=active,intended,on-hold&{_STATEMENT_INCLUDE}",
    "allergies": f"AllergyIntolerance?patient={PATIENT_TOKEN}&clinical-status=active",
}

# What cannot be checked when a key's data is unavailable (not merely empty).
CHECKS_NEEDING: dict[str, str] = {
    "patient": "age and sex",
    "egfr": "renal function (eGFR)",
    "creatinine": "renal function (creatinine)",
    "weight": "weight-based dosing and creatinine clearance",
    "height": "height (pediatric renal estimate)",
    "pregnancy": "pregnancy status",
    "breastfeeding": "breastfeeding status",
    "bilirubin": "hepatic function (bilirubin)",
    "ast": "hepatic function (AST)",
    "alt": "hepatic function (ALT)",
    "albumin": "hepatic function (albumin)",
    "inr": "hepatic function (INR)",
    "child_pugh": "hepatic function (Child-Pugh class)",
    "conditions": "disease cautions (problem list)",
    "medications": "interactions and duplicate therapy with the medication list",
    "statements": "interactions with medications the patient reports taking (MedicationStatement)",
    "allergies": "allergies",
}


@dataclass(frozen=True)
class Service:
    id: str
    hooks: tuple[str, ...]
    title: str
    description: str


SERVICES: dict[str, Service] = {
    s.id: s
    for s in (
        Service(
            id="muscle-relaxant-dosing",
            hooks=("order-select", "order-sign"),
            title="Skeletal muscle relaxant dosing and safety",
            description=(
                "Starting dose, renal and age adjustment, interactions, duplicate therapy, allergies and "
                "pregnancy for orders of baclofen and other skeletal muscle relaxants. order-select: advice "
                "on the selected orders with a starting-dose suggestion; order-sign: every draft order, "
                "including the written dose against this patient's maximum."
            ),
        ),
        Service(
            id="muscle-relaxant-review",
            hooks=("patient-view",),
            title="Skeletal muscle relaxant medication review",
            description=(
                "Reviews the active muscle relaxant prescriptions when the chart is opened: dose against "
                "current renal function, new interacting medications, duplicates and population cautions."
            ),
        ),
    )
}


DiscoveryMode = Literal["per-hook", "shared"]


def _per_hook() -> dict[str, Service]:
    """One service per (service, hook): a multi-hook service gets ``{id}-{hook}`` ids."""
    out: dict[str, Service] = {}
    for s in SERVICES.values():
        if len(s.hooks) == 1:
            out[s.id] = s
            continue
        for hook in s.hooks:
            out[f"{s.id}-{hook}"] = Service(
                id=f"{s.id}-{hook}", hooks=(hook,), title=s.title, description=s.description
            )
    return out


PER_HOOK: dict[str, Service] = _per_hook()


def listed(mode: DiscoveryMode) -> dict[str, Service]:
    """The services the discovery document lists in ``mode``."""
    return dict(PER_HOOK) if mode == "per-hook" else dict(SERVICES)


def callable_services() -> dict[str, Service]:
    """Every id a call may use, whatever the mode: the per-hook ids and the shared ones."""
    return {**SERVICES, **PER_HOOK}


def discovery_document(mode: DiscoveryMode = "per-hook") -> dict[str, list[dict[str, object]]]:
    services = [
        ServiceDescription(hook=hook, title=s.title, description=s.description, id=s.id, prefetch=dict(PREFETCH)).wire()
        for s in listed(mode).values()
        for hook in s.hooks
    ]
    return {"services": services}
