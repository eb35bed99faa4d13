"""The inputs every benchmark uses: one reference patient, a seeded synthetic mix, long medication
lists, CDS Hooks order-select calls with full prefetch, and a rule pack scaled by copying rules.

All of it is deterministic (fixed seeds, fixed dates), so two runs measure the same work.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from typing import Any

from engine.compiler.durable_form import build_definition
from engine.compiler.model import CompiledPack, CompiledRule, DrugRules
from schemas.api import EvaluateRequest

# The README's example: baclofen for a 67-year-old woman with MS on oxycodone (renal band derived,
# interaction, geriatric and disease rules fire).
README_PATIENT: dict[str, Any] = {
    "patient": {
        "age_years": 67,
        "sex": "female",
        "weight_kg": 62,
        "serum_creatinine_mg_dl": 1.3,
        "conditions": ["multiple sclerosis"],
        "co_medications": [{"name": "oxycodone", "rxcui": "7804"}],
    },
    "drug": {"name": "baclofen", "action": "start"},
}
COMED_COUNTS = (0, 5, 20, 50)
RULE_MULTIPLIERS = (1, 3, 10)


def readme_request() -> EvaluateRequest:
    return EvaluateRequest.model_validate(README_PATIENT)


def with_comeds(pack: CompiledPack, n: int, seed: int = 8) -> EvaluateRequest:
    """The README patient with ``n`` co-medications (seeded draw of the pack's ingredients, by name)."""
    names = sorted(i for i in pack.terminology.ingredients if i != "baclofen")
    random.Random(seed).shuffle(names)
    body = {**README_PATIENT, "patient": {**README_PATIENT["patient"], "co_medications": []}}
    body["patient"]["co_medications"] = [{"name": name.replace("-", " ")} for name in names[:n]]
    return EvaluateRequest.model_validate(body)


def synthetic_bodies(pack: CompiledPack, n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` request bodies from ``cdsrules synth`` (every drug, realistic ages, labs and lists)."""
    from engine.harness.synth import Generator

    return [
        sp.request.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        for sp in Generator(pack, seed).cohort(n)
    ]


# ---- rule pack scaled by copies -----------------------------------------------------------------


def scaled_pack(pack: CompiledPack, copies: int) -> CompiledPack:
    """The pack with every rule present ``copies`` times (copies get new ids, same conditions).

    This is what a 10x larger library costs the engine: 10x the rules in each drug's ruleset, the
    same alpha tests (durable-rules shares identical tests), 10x the beta nodes and firings. The
    definition is rebuilt by the real compiler back end, whose limit checks must still pass.
    """
    if copies == 1:
        return pack
    rules = dict(pack.rules)
    drugs: dict[str, DrugRules] = {}
    for drug, dr in pack.drugs.items():
        scaled: list[CompiledRule] = list(dr.rules)
        for k in range(1, copies):
            for r in dr.rules:
                rid = f"{r.id}~copy{k}"
                copy = dataclasses.replace(r, rule=r.rule.model_copy(update={"id": rid}))
                scaled.append(copy)
                rules[rid] = copy
        definition, names, problems = build_definition(scaled)
        if any(p.severity == "error" for p in problems):
            raise RuntimeError(f"{copies}x {drug}: {[p.message for p in problems]}")
        drugs[drug] = dataclasses.replace(dr, rules=tuple(scaled), durable_definition=definition, durable_names=names)
    return dataclasses.replace(pack, drugs=drugs, rules=rules, digest=f"{pack.digest[:40]}-x{copies}")


# ---- CDS Hooks order-select with full prefetch --------------------------------------------------

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
TODAY = dt.date(2026, 6, 1)  # fixed, so a body is the same every run


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def _obs(pid: str, code: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{code}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-05-20",
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def _concept(ref: dict[str, Any]) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": ref.get("name") or f"RxNorm {ref['rxcui']}"}
    if ref.get("rxcui"):
        concept["coding"] = [{"system": RXNORM, "code": ref["rxcui"]}]
    return concept


def _med_request(pid: str, rid: str, ref: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": _concept(ref),
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": "2026-05-01",
    }


def order_select_body(body: dict[str, Any], index: int) -> dict[str, Any]:
    """A synthetic patient as the EHR would send it: order-select, every prefetch key answered."""
    p, drug = body["patient"], body["drug"]
    pid = f"bench-{index}"
    patient: dict[str, Any] = {"resourceType": "Patient", "id": pid, "active": True}
    if p.get("sex") in ("female", "male", "other", "unknown"):
        patient["gender"] = p["sex"]
    if p.get("age_years") is not None:
        patient["birthDate"] = (TODAY - dt.timedelta(days=round(float(p["age_years"]) * 365.2425))).isoformat()
    elif p.get("birth_date"):
        patient["birthDate"] = p["birth_date"]
    labs = {
        "egfr": ("egfr_ml_min_1_73m2", "33914-3", "mL/min/{1.73_m2}"),
        "creatinine": ("serum_creatinine_mg_dl", "2160-0", "mg/dL"),
        "weight": ("weight_kg", "29463-7", "kg"),
        "height": ("height_cm", "8302-2", "cm"),
    }
    prefetch: dict[str, Any] = {"patient": patient}
    for key, (name, code, unit) in labs.items():
        value = p.get(name)
        prefetch[key] = _bundle(_obs(pid, code, value, unit)) if value is not None else _bundle()
    if p.get("pregnant") is not None:
        answer = ("LA15173-0", "Pregnant") if p["pregnant"] else ("LA26683-5", "Not pregnant")
        preg = {
            "resourceType": "Observation",
            "id": "preg",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "82810-3"}]},
            "effectiveDateTime": "2026-05-20",
            "valueCodeableConcept": {"coding": [{"system": LOINC, "code": answer[0], "display": answer[1]}]},
        }
        prefetch["pregnancy"] = _bundle(preg)
    else:
        prefetch["pregnancy"] = _bundle()
    conditions = []
    for i, c in enumerate(p.get("conditions", [])):
        concept = {"text": c} if isinstance(c, str) else c
        conditions.append(
            {
                "resourceType": "Condition",
                "id": f"cond-{i}",
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "code": concept,
                "subject": {"reference": f"Patient/{pid}"},
            }
        )
    prefetch["conditions"] = _bundle(*conditions)
    meds = [_med_request(pid, f"med-{i}", m, "active") for i, m in enumerate(p.get("co_medications", []))]
    prefetch["medications"] = _bundle(*meds)
    allergies = [
        {
            "resourceType": "AllergyIntolerance",
            "id": f"alg-{i}",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": _concept(a),
            "patient": {"reference": f"Patient/{pid}"},
        }
        for i, a in enumerate(p.get("allergies", []))
    ]
    prefetch["allergies"] = _bundle(*allergies)
    draft = _med_request(pid, "draft-1", {k: v for k, v in drug.items() if k in ("name", "rxcui")}, "draft")
    return {
        "hook": "order-select",
        "hookInstance": str(uuid.UUID(int=random.Random(index).getrandbits(128))),
        "context": {
            "userId": "Practitioner/bench",
            "patientId": pid,
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]},
            "selections": ["MedicationRequest/draft-1"],
        },
        "prefetch": prefetch,
    }
