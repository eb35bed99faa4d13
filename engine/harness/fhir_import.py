"""Import FHIR patient bundles (Synthea R4, SMART STU3) as cohort lines, via engine/fhir.

Cohorts should also come from data nobody on the team wrote. The FHIR-to-profile mapping is the
CDS Hooks team's ``engine.fhir.build_profile`` (LOINC, RxNorm, SNOMED CT; Synthea's eGFR 33914-3
and creatinine 38483-4 included); this module only adds what a bulk importer needs: one bundle per
file, a clear error for a file that is not usable (not JSON, not FHIR, no Patient), and the order
to evaluate. The order is either named on the command line (``--drug``; Synthea prescribes no
muscle relaxant) or taken from the bundle's own active MedicationRequest for a drug in the pack,
which then leaves the medication list and brings its written dose for the dose-range check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.compiler.model import CompiledPack
from engine.errors import CdsRulesError
from engine.fhir import FhirProfile, MedOrder, build_profile, unpack
from schemas.api import DrugRef, Patient


class FhirImportError(CdsRulesError):
    """A file that cannot be imported; the message starts with the file (and line:column)."""


@dataclass
class ImportedBundle:
    source: str
    profile: FhirProfile
    orders: list[tuple[str, MedOrder]]  # (pack drug, its active MedicationRequest)


def read_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FhirImportError(f"{path}: cannot be read: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FhirImportError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc


def import_document(doc: Any, source: str, pack: CompiledPack) -> ImportedBundle:
    """Map one patient's bundle (or resource list) to a profile and the pack drugs it orders."""
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise FhirImportError(f"{source}: not a FHIR resource (no 'resourceType' at the top level)")
    found = unpack(doc)
    patients = found.of_type("Patient")
    if not patients:
        kinds = sorted({str(r.get("resourceType")) for r in found.resources})
        raise FhirImportError(
            f"{source}: no Patient resource among {len(found.resources)} resources ({', '.join(kinds[:8])}); "
            "a bundle must describe one patient"
        )
    if len({str(p.get("id")) for p in patients}) > 1:
        raise FhirImportError(f"{source}: {len(patients)} different Patient resources; import one patient per file")
    try:
        profile = build_profile(found)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # the mapper is tolerant; this is a bug
        raise FhirImportError(f"{source}: could not be mapped: {type(exc).__name__}: {exc}") from exc
    term = pack.terminology
    orders = []
    for med in profile.medications:
        ings = term.resolve_drug(med.drug) if med.drug else frozenset()
        if len(ings) == 1 and next(iter(ings)) in pack.drugs:
            orders.append((next(iter(ings)), med))
    return ImportedBundle(source, profile, orders)


def _without(meds: list[DrugRef], drug: DrugRef) -> list[DrugRef]:
    out, removed = [], False
    for m in meds:
        if not removed and m == drug:
            removed = True
            continue
        out.append(m)
    return out


def _patient_json(patient: Patient) -> dict[str, Any]:
    return patient.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def records(imp: ImportedBundle, drugs: Sequence[str], action: str = "start") -> list[dict[str, Any]]:
    """Cohort lines: one per ``drugs`` entry, or one per relaxant order in the bundle."""
    stem = Path(imp.source).name.removesuffix(".json")
    notes = list(imp.profile.notes)
    patient = imp.profile.patient
    out: list[dict[str, Any]] = []

    def line(suffix: str, body: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"{stem}#{suffix}", "source": imp.source, "notes": notes, "patient": body, "drug": order}

    for drug in drugs:
        out.append(line(drug, _patient_json(patient), {"name": drug, "action": action}))
    if drugs:
        return out
    for i, (drug, med) in enumerate(imp.orders):
        assert med.drug is not None
        body = patient.model_copy(update={"co_medications": _without(patient.co_medications, med.drug)})
        order: dict[str, Any] = {"name": drug, "action": action}
        if med.ordered is not None and action == "start":
            order["ordered_dose"] = med.ordered.model_dump()
        out.append(line(f"{drug}-{i}" if i else drug, _patient_json(body), order))
    return out
