"""Read the Medication a ``medicationReference`` names when the EHR sent it neither contained nor bundled.

An order whose drug is ``medicationReference: Medication/123`` says nothing about the drug until
that Medication is read: without it the order is a co-medication of unknown drug, and a draft
cannot be checked at all. The prefetch templates ask for the Medications with ``_include``; what is
still missing is read here from ``fhirServer`` through the call's ``FhirFetcher`` (URLs checked to
be under ``fhirServer``, the token only there, the size cap and the call's time budget), at most
``MAX_MEDICATION_READS`` of them per call. A reference that still cannot be resolved is returned
with the reason, for the "Not checked" card: an order's drug is never left unknown without a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.cdshooks.fhirclient import FhirFetcher, under_base
from engine.cdshooks.prefetch import fill
from engine.fhir.bundle import ReferenceIndex, Unpacked
from engine.fhir.medications import ACTIVE_STATUSES, DRAFT_STATUSES, STATEMENT_STATUSES
from engine.fhir.values import obj, status, text

MAX_MEDICATION_READS = 10  # one call orders a handful of drugs; more reads would only spend the budget
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # R4 datatypes: id
_RELATIVE = re.compile(r"^Medication/([^/]+)(?:/_history/([^/]+))?$")
NO_SERVER = "not contained, not in the prefetch, and no fhirServer to read it from"


@dataclass
class MedicationReads:
    """The Medications read for this call (keyed by the reference as written) and why the others were not."""

    found: Unpacked = field(default_factory=Unpacked)
    why_not: dict[str, str] = field(default_factory=dict)


def medication_reference(resource: dict[str, Any]) -> str | None:
    """The ``medicationReference`` (R4) or ``medication.reference`` (R5) of an order, as written."""
    if resource.get("medicationCodeableConcept") is not None:
        return None
    ref = resource.get("medicationReference")
    if ref is None:
        ref = obj(resource.get("medication")).get("reference")
    return text(obj(ref).get("reference"))


def counted(resource: dict[str, Any], draft: bool) -> bool:
    """Whether the order's drug matters to this call: a draft, an active request, a current statement."""
    rtype, st = resource.get("resourceType"), status(resource.get("status"))
    if rtype == "MedicationStatement":
        return st in STATEMENT_STATUSES
    if rtype != "MedicationRequest":
        return False
    return draft or st in ACTIVE_STATUSES or st in DRAFT_STATUSES


def unresolved(orders: Iterable[dict[str, Any]], index: ReferenceIndex) -> dict[str, list[str]]:
    """Each medication reference that nothing in the call resolves, with the orders that use it."""
    out: dict[str, list[str]] = {}
    for r in orders:
        ref = medication_reference(r)
        if ref is None or index.resolve(ref, container=r) is not None:
            continue
        rid = text(r.get("id"))
        owner = f"{r.get('resourceType')}/{rid}" if rid else f"a {r.get('resourceType')}"
        out.setdefault(ref, []).append(owner)
    return out


def _relative(ref: str, base: str | None) -> tuple[str | None, str | None]:
    """(path under fhirServer to read, None) or (None, why it is not read)."""
    if ref.startswith("#"):
        return None, f"contained Medication {ref} is missing from the resource"
    if ref.startswith(("urn:uuid:", "urn:oid:")):
        return None, "a bundle-local reference that is not in the bundle"
    if base is None:
        return None, NO_SERVER
    path = ref
    if "://" in ref:
        if not under_base(base, ref):
            return None, "a reference outside fhirServer; not read"
        path = ref[len(base.rstrip("/")) :].lstrip("/")
    m = _RELATIVE.match(path)
    if m is None:
        return None, "not a reference to a Medication"
    if not all(_FHIR_ID.match(part) for part in m.groups() if part is not None):
        return None, "not a valid FHIR id; not read"
    return fill(path, ""), None


async def read_medications(refs: list[str], fetcher: FhirFetcher | None) -> MedicationReads:
    """Read up to ``MAX_MEDICATION_READS`` of ``refs`` (in order) from ``fhirServer``; the rest with reasons."""
    out = MedicationReads()
    to_read: dict[str, str] = {}
    for ref in dict.fromkeys(refs):
        path, why = _relative(ref, fetcher.base if fetcher is not None else None)
        if path is None:
            out.why_not[ref] = why or "not read"
        elif len(to_read) >= MAX_MEDICATION_READS:
            out.why_not[ref] = f"not read: more than {MAX_MEDICATION_READS} Medication reads in one call"
        else:
            to_read[ref] = path
    if fetcher is None or not to_read:
        return out
    for ref, got in (await fetcher.read_many(to_read)).items():
        doc = got.document
        if doc is None:
            out.why_not[ref] = f"not read from fhirServer: {got.error}"
        elif doc.get("resourceType") != "Medication":
            out.why_not[ref] = f"fhirServer answered with {doc.get('resourceType') or 'an object'}, not a Medication"
        else:
            out.found.resources.append(doc)
            out.found.full_urls[ref] = doc  # resolves the reference exactly as the order wrote it
    return out


def gaps(pending: dict[str, list[str]], why_not: dict[str, str]) -> list[str]:
    """ "Not checked" lines for the references still unresolved after reading."""
    return [
        f"{ref} (drug of {', '.join(owners[:3])}{' …' if len(owners) > 3 else ''}): "
        f"{why_not.get(ref, 'could not be resolved')}"
        for ref, owners in pending.items()
    ]
