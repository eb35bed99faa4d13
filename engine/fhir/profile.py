"""Turn a pile of FHIR R4 resources into the engine's patient profile, saying what was used.

``profile_from_resources`` is the one entry point shared by CDS Hooks and the Synthea importer:
give it resources (or Bundles) for one patient and get back a validated ``schemas.api.Patient``
and notes on everything that was skipped, converted or assumed. Nothing here knows about CDS Hooks
or the rule pack; which drugs and conditions matter is the engine's business, not the mapper's.

Policy: the latest value wins (by effective date); inactive or refuted records do not count; a
value the API's plausibility limits reject is dropped with a note instead of failing the patient.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engine.fhir.breastfeeding import breastfeeding_status
from engine.fhir.bundle import ReferenceIndex, Unpacked, unpack
from engine.fhir.hepatic import hepatic_reading
from engine.fhir.medications import ACTIVE_STATUSES, STATEMENT_STATUSES, MedOrder, med_order
from engine.fhir.observations import CodedObservations, Measurement, latest_measurement, pregnancy_status
from engine.fhir.pregnancy import is_pregnancy_condition, still_pregnant
from engine.fhir.values import RXNORM, as_list, codes_in, codings, concept_text, obj, status, text, when
from schemas.api import CodeableConcept, Coding, DrugRef, Patient

MAX_CONDITIONS, MAX_MEDICATIONS, MAX_ALLERGIES = 500, 200, 200
_INACTIVE_CONDITION = {"inactive", "resolved", "remission"}
_NOT_TRUE = {"entered-in-error", "refuted"}
_DRUG_ALLERGY_CATEGORIES = {"medication", "biologic"}
_NO_KNOWN_ALLERGY = {"716186003"}  # SNOMED CT "No known allergy" (seen in SMART sample patients)
_LEAST_CERTAIN: tuple[str, ...] = ("pregnant", "serum_creatinine_mg_dl")
_SEX = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}
US_CORE_INDIVIDUAL_SEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-individual-sex"
# SNOMED CT 248152002 |Female (finding)|, 248153007 |Male (finding)| (US Core individual-sex value set)
_INDIVIDUAL_SEX = {"248152002": "female", "248153007": "male"}


def _individual_sex(p: dict[str, Any]) -> str | None:
    """US Core's individual-sex extension, used when ``gender`` is absent."""
    for ext in as_list(p.get("extension")):
        e = obj(ext)
        if e.get("url") == US_CORE_INDIVIDUAL_SEX:
            return _INDIVIDUAL_SEX.get(str(obj(e.get("valueCoding")).get("code")))
    return None


@dataclass
class FhirProfile:
    """The profile plus everything a clinician (or an auditor) needs to see how it was built."""

    patient: Patient
    notes: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # facts used, with codes and dates
    medications: list[MedOrder] = field(default_factory=list)  # active MedicationRequests
    # drug intolerances (type intolerance or low criticality, no severe reaction): a caution naming
    # the reaction, not the contraindicating hypersensitivity an allergy is
    intolerances: list[tuple[DrugRef, str]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # results too old to dose on, shown as such
    # active pregnancy Conditions with no date (patient 55 or younger, or of unknown age): pregnancy
    # may be current and must be confirmed; ``patient.pregnant`` is not set from them
    possible_pregnancy: list[str] = field(default_factory=list)
    patient_id: str | None = None


def _active_condition(c: dict[str, Any]) -> bool:
    if status(c.get("verificationStatus")) in _NOT_TRUE:
        return False
    clinical = status(c.get("clinicalStatus"))
    if clinical is None:  # absent: count it unless it has ended
        return not (c.get("abatementDateTime") or c.get("abatementPeriod") or c.get("abatementString"))
    return clinical not in _INACTIVE_CONDITION


def condition_concept(c: dict[str, Any]) -> CodeableConcept | None:
    """Condition.code as our CodeableConcept (codings without system or code are dropped)."""
    code = c.get("code")
    kept = [
        Coding(system=str(x["system"]).strip(), code=str(x["code"]).strip(), display=text(x.get("display")))
        for x in codings(code)
        if text(str(x.get("system") or "")) and text(str(x.get("code") or ""))
    ]
    label = concept_text(code)
    if not kept and not label:
        return None
    return CodeableConcept(text=label, coding=kept)


def _active_allergy(a: dict[str, Any]) -> bool:
    if status(a.get("verificationStatus")) in _NOT_TRUE:
        return False
    return status(a.get("clinicalStatus")) in (None, "active")


def allergy_ref(a: dict[str, Any]) -> DrugRef | None:
    """A drug allergy as a DrugRef; food, environment and "no known allergy" entries give None."""
    code = a.get("code") or obj(a.get("reaction")).get("substance")
    all_codes = {str(c.get("code")) for c in codings(code)}
    label = concept_text(code)
    if all_codes & _NO_KNOWN_ALLERGY or (label or "").lower().startswith("no known"):
        return None
    rx = [c for c in codes_in(code, RXNORM) if c.isdigit() and len(c) <= 9]
    categories = {str(x).lower() for x in as_list(a.get("category")) if isinstance(x, str)}
    if not rx and categories and not categories & _DRUG_ALLERGY_CATEGORIES:
        return None
    if not rx and not label:
        return None
    return DrugRef(name=label, rxcui=rx[0] if rx else None)


_ANAPHYLAXIS = {"39579001"}  # SNOMED CT 39579001 |Anaphylaxis|


def intolerance_words(a: dict[str, Any]) -> str | None:
    """What to say about an entry that is an intolerance rather than an allergy, or None (an allergy).

    FHIR R4 AllergyIntolerance: ``type`` intolerance is "a propensity for adverse reactions ... not
    considered immune-mediated"; ``criticality`` low is "unlikely to cause a life-threatening
    reaction". Either one, with no severe reaction and no anaphylaxis recorded, is a caution. An
    allergy, high or unassessable criticality, or any severe reaction stays a contraindication.
    """
    kind = status(a.get("type"))
    criticality = status(a.get("criticality"))
    reactions = [obj(r) for r in as_list(a.get("reaction"))]
    manifest = [m for r in reactions for m in as_list(r.get("manifestation"))]
    codes = {str(c.get("code")) for m in manifest for c in codings(m)}
    words = [concept_text(m) or "" for m in manifest]
    severe = any(status(r.get("severity")) == "severe" for r in reactions)
    anaphylaxis = bool(codes & _ANAPHYLAXIS) or any("anaphyla" in w.lower() for w in words)
    if severe or anaphylaxis or criticality == "high" or not (kind == "intolerance" or criticality == "low"):
        return None
    shown = ", ".join(w for w in words if w) or "reaction not recorded"
    return f"{shown}; {kind or 'type not recorded'}, criticality {criticality or 'not recorded'}"


def _age(born: Any, now: dt.datetime) -> float | None:
    if not isinstance(born, dt.date):
        return None
    return (now.date() - born).days / 365.25


def _pregnancy_from_conditions(conditions: list[dict[str, Any]], fields: dict[str, Any], out: FhirProfile) -> list[Any]:
    """Conditions without the stale pregnancies; a recent one sets ``pregnant`` when nothing else did."""
    now = dt.datetime.now(dt.UTC)
    age = _age(fields.get("birth_date"), now)
    kept: list[dict[str, Any]] = []
    for c in conditions:
        if not is_pregnancy_condition(c):
            kept.append(c)
            continue
        assessed, why = still_pregnant(c, age, now)
        if assessed == "possible" and "pregnant" not in fields and fields.get("sex") != "male":
            out.possible_pregnancy.append(why)  # a warning card; ``pregnant`` stays unset
            continue
        if assessed != "pregnant":
            if assessed == "possible":
                used = "the pregnancy status observation (LOINC 82810-3)" if "pregnant" in fields else "sex male"
                why += f"; {used} was used instead"
            out.notes.append(f"pregnancy status not checked from the problem list: {why}")
            continue
        kept.append(c)
        out.evidence.append(why)
        fields.setdefault("pregnant", True)
    return kept


def _patient_fields(p: dict[str, Any], out: FhirProfile) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    sex = _SEX.get(str(p.get("gender") or "").lower()) or _individual_sex(p)
    if sex:
        fields["sex"] = sex
    born = when(p.get("birthDate"))
    if born is not None:
        fields["birth_date"] = born.date()
        if len(str(p.get("birthDate"))) < 10:
            out.notes.append(f"birthDate {p.get('birthDate')!r} is partial; the first day of the period was used")
        out.evidence.append(f"born {born.date().isoformat()}")
    if sex:
        out.evidence.append(f"sex {sex}")
    return fields


_RENAL_KINDS = ("egfr", "creatinine")


def _measure(
    obs: CodedObservations, kind: str, label: str, out: FhirProfile, max_age_days: int | None = None
) -> Measurement | None:
    m, notes = latest_measurement(obs, kind)
    out.notes.extend(notes)
    if m is None:
        return None
    if max_age_days and kind in _RENAL_KINDS and m.at is not None:
        age = (dt.datetime.now(dt.UTC) - m.at).days
        if age > max_age_days:
            out.stale.append(f"stale {label}: {m.describe(label)} is over {max_age_days} days old, treated as unknown")
            return None
    out.evidence.append(m.describe(label))
    return m


def build_profile(resources: Any, renal_max_age_days: int | None = None) -> FhirProfile:
    """``renal_max_age_days``: an eGFR or creatinine older than this is stale, treated as unknown."""
    """Map resources (a list, a Bundle, both, or an already ``Unpacked`` set) to a ``FhirProfile``."""
    found: Unpacked = resources if isinstance(resources, Unpacked) else unpack(resources)
    out = FhirProfile(patient=Patient())
    patients = found.of_type("Patient")
    fields: dict[str, Any] = {}
    if not patients:
        out.notes.append("no Patient resource: age and sex unknown")
    else:
        if len(patients) > 1:
            out.notes.append(f"{len(patients)} Patient resources; the first was used")
        out.patient_id = text(patients[0].get("id"))
        fields |= _patient_fields(patients[0], out)

    obs = CodedObservations.of(found.of_type("Observation"))
    for kind, label, name in (
        ("egfr", "eGFR", "egfr_ml_min_1_73m2"),
        ("creatinine", "serum creatinine", "serum_creatinine_mg_dl"),
        ("weight", "weight", "weight_kg"),
        ("height", "height", "height_cm"),
    ):
        m = _measure(obs, kind, label, out, renal_max_age_days)
        if m is not None:
            fields[name] = m.value
    pregnant, pm, notes = pregnancy_status(obs)
    out.notes.extend(notes)
    if pm is not None:
        fields["pregnant"] = pregnant
        day = pm.at.date().isoformat() if pm.at else "undated"
        out.evidence.append(f"pregnancy status {pm.note or 'recorded'} (LOINC 82810-3, {day})")

    breastfeeding, line, notes = breastfeeding_status(obs)
    out.notes.extend(notes)
    if line is not None:
        out.evidence.append(line)
        if breastfeeding is not None:
            fields["breastfeeding"] = breastfeeding

    conditions = [c for c in found.of_type("Condition") if _active_condition(c)]
    conditions = _pregnancy_from_conditions(conditions, fields, out)
    hepatic = hepatic_reading(obs, conditions, renal_max_age_days)  # the same age bound as renal labs
    if hepatic.grade is not None:
        fields["hepatic_impairment"] = hepatic.grade
    out.evidence.extend(hepatic.evidence)
    out.notes.extend(hepatic.notes)
    concepts = [cc for cc in (condition_concept(c) for c in conditions) if cc is not None]
    fields["conditions"] = _capped(concepts, MAX_CONDITIONS, "conditions", out)

    index = ReferenceIndex(found.resources, found.full_urls)
    meds = [med_order(mr, index) for mr in found.of_type("MedicationRequest")]
    out.medications = [m for m in meds if m.status in ACTIVE_STATUSES and m.drug is not None]
    statements = [med_order(ms, index) for ms in found.of_type("MedicationStatement")]
    out.medications += [m for m in statements if m.status in STATEMENT_STATUSES and m.drug is not None]
    refs_all = [r for m in out.medications for r in m.refs()]
    fields["co_medications"] = _capped(refs_all, MAX_MEDICATIONS, "medications", out)

    refs: list[DrugRef] = []
    for a in found.of_type("AllergyIntolerance"):
        ref = allergy_ref(a) if _active_allergy(a) else None
        if ref is None:
            continue
        refs.append(ref)  # the native profile has no intolerance field: kept, the conservative side
        caution = intolerance_words(a)
        if caution is not None:
            where = f"AllergyIntolerance/{a.get('id')}" if a.get("id") else "an AllergyIntolerance"
            out.intolerances.append((ref, f"{caution} ({where})"))
    fields["allergies"] = _capped(refs, MAX_ALLERGIES, "allergies", out)

    out.patient = _validated(fields, out)
    return out


def _capped(items: list[Any], limit: int, what: str, out: FhirProfile) -> list[Any]:
    if len(items) > limit:
        out.notes.append(f"{len(items)} active {what}; only the first {limit} were checked")
    return items[:limit]


def _validated(fields: dict[str, Any], out: FhirProfile) -> Patient:
    """A Patient from ``fields``, dropping (with a note) any value the API's limits reject."""
    for _ in range(len(fields) + 1):
        try:
            return Patient.model_validate(fields)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")}
            dropped: list[str] = sorted(bad & fields.keys())
            if not dropped:  # a cross-field rule (e.g. pregnant and male): drop the least certain
                dropped = [k for k in _LEAST_CERTAIN if k in fields][:1]
            if not dropped:
                break
            for name in dropped:
                msg = next((e["msg"] for e in exc.errors() if e.get("loc") and e["loc"][0] == name), "rejected")
                out.notes.append(f"{name}={fields.pop(name)!r} not used: {msg}")
    out.notes.append("patient data could not be validated; an empty profile was used")
    return Patient()


def profile_from_resources(resources: list[dict[str, Any]]) -> tuple[Patient, list[str]]:
    """The importer's entry point: a validated Patient and human-readable notes."""
    profile = build_profile(resources)
    return profile.patient, profile.notes
