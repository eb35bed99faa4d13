"""The route an order is given by, read from what an EHR records, so only oral orders get oral advice.

The rule pack's doses are oral doses. An intrathecal baclofen order (micrograms a day by pump) or
a tizanidine patch must never receive an oral start dose or a suggestion rewriting it to tablets.
The route is read from ``dosageInstruction[].route`` first (SNOMED CT route codes such as
26643006 "Oral route", HL7 v3 RouteOfAdministration ``PO``, or the text), then from the dose form
(``Medication.form``) and the product name ("Gablofen 0.5 MG/ML Intrathecal Solution", the RxNorm
SCD naming carries the dose form). Nothing saying otherwise means oral, as every oral product name
from RxNorm ends in its oral dose form and an order without a route is, in practice, an oral one.
"""

from __future__ import annotations

import re
from typing import Any

from engine.fhir.values import as_list, codes_in, concept_text, obj, text

SNOMED = "http://snomed.info/sct"
V3_ROUTE = "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration"
# SNOMED CT 26643006 |Oral route|; HL7 v3 RouteOfAdministration PO (swallow, oral)
_ORAL_CODES = {(SNOMED, "26643006"), (V3_ROUTE, "PO")}
_ORAL_WORDS = re.compile(r"\b(oral|orally|po|p\.o\.|by mouth|per os|mouth)\b", re.IGNORECASE)
# Dose forms and route words in product names and dose-form displays that are not oral
_NON_ORAL = re.compile(
    r"\b(intrathecal|intravenous|intramuscular|subcutaneous|injectable|injection|infusion|transdermal|"
    r"patch|topical|cream|ointment|gel|rectal|suppository|vaginal|ophthalmic|otic|nasal|inhalation|"
    r"inhaler|sublingual|buccal|epidural|parenteral|cutaneous)\b",
    re.IGNORECASE,
)


def _concept_route(concept: Any) -> tuple[bool | None, str]:
    """(oral?, words) for one route CodeableConcept; None when it says nothing readable."""
    c = obj(concept)
    for coding in as_list(c.get("coding")):
        cd = obj(coding)
        if (text(cd.get("system")), text(cd.get("code"))) in _ORAL_CODES:
            return True, "oral"
    words = concept_text(concept) or ""
    if not words:
        codes = [f"{s} {code}" for s in (SNOMED, V3_ROUTE) for code in codes_in(concept, s)]
        return (False, codes[0]) if codes else (None, "")
    if _ORAL_WORDS.search(words) and not _NON_ORAL.search(words):
        return True, "oral"
    return False, re.sub(r"\s+route$", "", words.strip(), flags=re.IGNORECASE).lower()


def non_oral_route(mr: dict[str, Any], medication: dict[str, Any] | None, label: str | None) -> str | None:
    """The non-oral route (or dose form) of a MedicationRequest/Statement, or None when oral."""
    for dosage in as_list(mr.get("dosageInstruction")) + as_list(mr.get("dosage")):
        route = obj(dosage).get("route")
        if route is None:
            continue
        oral, words = _concept_route(route)
        if oral is False:
            return words
        if oral:
            return None
    form = concept_text(obj(medication).get("form")) if medication else None
    for found in (form, label):
        hit = _NON_ORAL.search(found or "")
        if hit:
            return hit.group(1).lower()
    return None
