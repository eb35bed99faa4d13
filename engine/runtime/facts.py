"""Turn a request into the patient fact the rules see: typed, coded, and honest about gaps.

Everything a rule can test is computed here once, from data (terminology) and arithmetic (renal
estimates), never from clinical special cases; clinical judgement lives in the rule files. Numbers
are floats and tri-state flags are strings, so durable-rules never compares "100" with 60.

Speed (issue 8): the per-class co-medication count fields are named once per terminology
(``_ClassCounts``) and counted from the patient's few ingredients, not by intersecting every class.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from engine.compiler.language import count_field, size_field
from engine.runtime import renal
from engine.terminology import Terminology
from engine.terminology.lookup import DrugMatch
from schemas.api import CodeableConcept, DrugRef, EvaluateRequest, Unrecognized


@dataclass(frozen=True)
class ActiveRegimen:
    """The ordered drug already on the medication list: its known daily total, and entries without a dose."""

    daily_mg: float = 0.0
    undosed: int = 0


@dataclass(frozen=True)
class PatientFacts:
    fact: dict[str, Any]
    unrecognized: list[Unrecognized]
    renal: renal.RenalEstimate
    active: ActiveRegimen = ActiveRegimen()


def _tri(value: bool | None) -> str:
    return "unknown" if value is None else ("true" if value else "false")


def _label(item: CodeableConcept | str) -> str:
    if isinstance(item, str):
        return item
    if item.text:
        return item.text
    return ", ".join(f"{c.system}|{c.code}" for c in item.coding)


def _drug_label(ref: DrugRef) -> str:
    if ref.name:
        return ref.name
    return f"rxcui {ref.rxcui}" if ref.rxcui else f"NDC {ref.ndc}"


def _note_drug(out: list[Unrecognized], kind: str, i: int, ref: DrugRef, dm: DrugMatch) -> None:
    """An item not (fully) recognised is listed; a partial one says what was read and what was not."""
    if dm.complete:
        return
    if dm.ingredients:
        detail = f"read as {', '.join(sorted(dm.ingredients))}; not recognised: {dm.leftover}"
        out.append(
            Unrecognized(
                field=kind, pointer=f"/patient/{kind}/{i}", value=_drug_label(ref), status="partial", detail=detail
            )
        )
    else:
        out.append(Unrecognized(field=kind, pointer=f"/patient/{kind}/{i}", value=_drug_label(ref)))


class _ClassCounts:
    """``n_comed_<class>`` fields of one terminology, in class order, all zero; and each class's field."""

    def __init__(self, term: Terminology) -> None:
        self.source = term.class_members  # rebuilt if a terminology's classes are ever replaced
        self.zero: dict[str, float] = {count_field(cls): 0.0 for cls in term.class_members}
        self.field: dict[str, str] = {cls: count_field(cls) for cls in term.class_members}


_COUNTS: weakref.WeakKeyDictionary[Terminology, _ClassCounts] = weakref.WeakKeyDictionary()


def _class_counts(term: Terminology) -> _ClassCounts:
    counts = _COUNTS.get(term)
    if counts is None or counts.source is not term.class_members:
        counts = _COUNTS[term] = _ClassCounts(term)
    return counts


def build_facts(req: EvaluateRequest, ingredient: str, term: Terminology) -> PatientFacts:
    p = req.patient
    unrecognized: list[Unrecognized] = []
    age = p.resolved_age_years()
    est = renal.estimate(age, p.sex, p.weight_kg, p.height_cm, p.creatinine_mg_dl(), p.egfr_ml_min_1_73m2)

    fact: dict[str, Any] = {
        "action": req.drug.action,
        "sex": p.sex or "unknown",
        "on_dialysis": _tri(p.on_dialysis),
        "hepatic_impairment": p.hepatic_impairment,
        "pregnant": _tri(p.pregnant),
        "breastfeeding": _tri(p.breastfeeding),
    }
    if p.sex == "male":
        # pregnancy and breastfeeding do not apply; 'unknown' would raise a needless missing-data prompt
        fact["pregnant"] = fact["pregnant"] if p.pregnant is not None else "false"
        fact["breastfeeding"] = fact["breastfeeding"] if p.breastfeeding is not None else "false"
    for name, value in (
        ("age_years", age),
        ("weight_kg", p.weight_kg),
        ("height_cm", p.height_cm),
        ("renal_ml_min", est.value_ml_min),
        ("crcl_ml_min", est.crcl_ml_min),
        ("egfr_ml_min", est.egfr_ml_min),
    ):
        if value is not None:
            fact[name] = float(value)

    conditions: set[str] = set()
    for i, cond in enumerate(p.conditions):
        cm = term.match_condition(cond)
        if cm.value_sets:
            conditions |= cm.value_sets
        else:
            status = "not-used" if cm.excluded else "unrecognized"
            unrecognized.append(
                Unrecognized(
                    field="conditions",
                    pointer=f"/patient/conditions/{i}",
                    value=_label(cond),
                    status=status,
                    detail=cm.excluded,
                )
            )

    comeds: set[str] = set()
    on_list = False
    active_mg, undosed = 0.0, 0
    for i, med in enumerate(p.co_medications):
        dm = term.match_drug(med)
        _note_drug(unrecognized, "co_medications", i, med, dm)
        ings = dm.ingredients
        if ingredient in ings:
            on_list = True
            # a combination product's dose is not this ingredient's dose, so only single-ingredient entries add up
            if med.dose is not None and len(ings) == 1:
                active_mg += med.dose.dose_mg * med.dose.times_per_day
            else:
                undosed += 1
        comeds |= ings
    # the ordered drug itself is not a co-medication; its presence on the list is its own fact
    comeds.discard(ingredient)

    allergies: set[str] = set()
    for i, alg in enumerate(p.allergies):
        dm = term.match_drug(alg)
        _note_drug(unrecognized, "allergies", i, alg, dm)
        allergies |= dm.ingredients

    comed_classes = term.classes_for(comeds)
    sets = {
        "conditions": sorted(conditions),
        "comed_ingredients": sorted(comeds),
        "comed_classes": sorted(comed_classes),
        "allergy_ingredients": sorted(allergies),
        "allergy_classes": sorted(term.classes_for(allergies)),
    }
    for name, values in sets.items():
        fact[name] = values
        fact[size_field(name)] = float(len(values))
    fact["ordered_drug_on_med_list"] = "true" if on_list else "false"
    # n_comed_<class> = |members(class) & comeds|: one count per (ingredient, class it belongs to)
    counts = _class_counts(term)
    fact.update(counts.zero)
    for ing in comeds:
        for cls in term.classes_of.get(ing, ()):
            fact[counts.field[cls]] += 1.0

    return PatientFacts(fact, unrecognized, est, ActiveRegimen(round(active_mg, 4), undosed))
