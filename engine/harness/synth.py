"""Seeded synthetic patients: realistic, reproducible, and drawn from the rule pack's terminology.

Patient ``i`` of seed ``s`` depends only on ``(s, i)`` and the rule pack, so ``--n 100`` is a
prefix of ``--n 10000`` and a failing patient can be regenerated alone. Each patient carries the
``Truth`` the generator intended (which ingredients, allergies and value sets it put in), so the
invariants can check the engine's recognition against what was sent rather than against itself.
Codes come from the terminology (SNOMED/ICD-10-CM/text for conditions; ingredient and product
RxCUIs, names and brands for drugs); prevalences come from ``engine.harness.population``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from engine.compiler.model import CompiledPack
from engine.harness import physiology as phys
from engine.harness import population as pop
from engine.terminology import Terminology, normalise_text
from schemas.api import ICD10CM, SNOMED, UMOL_PER_MG_DL_CREATININE, CodeableConcept, DrugRef, EvaluateRequest

T = TypeVar("T")


@dataclass(frozen=True)
class Truth:
    """What the generator put into the request, in rule-pack ids."""

    ordered: str
    comed_ingredients: frozenset[str]  # includes the ordered drug when it is on the list
    allergy_ingredients: frozenset[str]
    conditions: frozenset[str]  # value-set ids as drawn (the engine adds broader sets)


@dataclass(frozen=True)
class SynthPatient:
    id: str
    request: EvaluateRequest
    truth: Truth

    def record(self) -> dict[str, Any]:
        """The JSONL line: an id plus exactly the body of ``POST /v1/evaluate``."""
        return {"id": self.id, **self.request.model_dump(mode="json", exclude_none=True, exclude_defaults=True)}


def _weighted(rng: random.Random, items: Sequence[tuple[T, float]]) -> T:
    total = sum(w for _, w in items)
    r = rng.random() * total
    for item, w in items:
        if r < w:
            return item
        r -= w
    return items[-1][0]


def _drug_is(term: Terminology, rep: dict[str, str], ingredient: str) -> bool:
    m = term.match_drug(DrugRef.model_validate(rep))
    return m.complete and m.ingredients == {ingredient}


def _concept(rep: Any) -> CodeableConcept | str:
    return rep if isinstance(rep, str) else CodeableConcept.model_validate(rep)


def _band(age: float | None) -> int:
    if age is None or 18 <= age < 65:
        return 1
    return 0 if age < 18 else 2


class Generator:
    """Draws patients for one compiled pack; representations are indexed once."""

    def __init__(self, pack: CompiledPack, seed: int) -> None:
        self.pack = pack
        self.seed = seed
        term = pack.terminology
        self.drugs = sorted(pack.drugs)
        self.drug_reps: dict[str, list[dict[str, str]]] = {
            ing: [{"name": ing.replace("-", " ")}] for ing in term.ingredients
        }
        for name, ing in sorted(term.by_name.items()):
            if name != ing.replace("-", " "):
                self.drug_reps[ing].append({"name": name})
        for code, ings in sorted(term.by_rxcui.items()):
            if len(ings) == 1:
                (ing,) = ings
                self.drug_reps[ing].append({"rxcui": code})
        self.cond_reps: dict[str, list[Any]] = {vs: [term.value_sets[vs]] for vs in term.value_sets}
        for code, sets in sorted(term.snomed.items()):
            for vs in sorted(sets):
                self.cond_reps[vs].append({"coding": [{"system": SNOMED, "code": code}]})
        for prefix, vs in sorted(term.icd_prefixes):
            self.cond_reps[vs].append({"coding": [{"system": ICD10CM, "code": prefix}]})
        for name, vs in sorted(term.vs_by_name.items()):
            self.cond_reps[vs].append(name)
        self._keep_unambiguous(term)
        known = set(pop.CONDITION_PREVALENCE) | pop.DERIVED_CONDITIONS
        self.other_value_sets = sorted(set(term.value_sets) - known)
        self.other_classes = sorted(set(term.class_members) - set(pop.COMED_GROUPS) - pop.UMBRELLA_CLASSES)

    def _keep_unambiguous(self, term: Terminology) -> None:
        """Only representations the engine reads as exactly the drawn item: published value sets
        overlap (an ESRD code is also CKD's), so a code drawn "for" one set may rightly count for
        another, and the truth of a synthetic patient must be what the engine should see."""
        for ing, reps in self.drug_reps.items():
            kept = [r for r in reps if _drug_is(term, r, ing)]
            self.drug_reps[ing] = kept or reps[:1]
        for vs, creps in self.cond_reps.items():
            want = term.vs_ancestors.get(vs, frozenset({vs}))
            kept = [r for r in creps if term.resolve_condition(_concept(r)) == want]
            self.cond_reps[vs] = kept or creps[:1]

    def cohort(self, n: int, start: int = 0) -> Iterator[SynthPatient]:
        for i in range(start, start + n):
            yield self.patient(i)

    def patient(self, i: int) -> SynthPatient:
        rng = random.Random(f"cdsrules-synth:{self.seed}:{i}")
        draw = _Draw(self, rng)
        return draw.build(f"synth-{self.seed}-{i:06d}")


class _Draw:
    """One patient's draws, in a fixed order so a seed always gives the same patient."""

    def __init__(self, gen: Generator, rng: random.Random) -> None:
        self.gen = gen
        self.rng = rng
        self.term = gen.pack.terminology
        self.patient: dict[str, Any] = {}
        self.conditions: set[str] = set()
        self.comeds: set[str] = set()
        self.allergies: set[str] = set()
        self.unknown_meds: list[str] = []

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def build(self, pid: str) -> SynthPatient:
        rng, p = self.rng, self.patient
        name, low, high, _ = _weighted(rng, [(b, b[3]) for b in pop.AGE_MIX])
        age = rng.uniform(low, high) if name != "older" else rng.triangular(low, high, low)
        age = round(min(age, 100.0), 1)
        sex = _weighted(rng, pop.SEX_MIX)
        known_age: float | None = None if self.chance(pop.AGE_MISSING) else age
        band = _band(known_age)
        if known_age is not None:
            p["age_years"] = known_age
        if sex is not None:
            p["sex"] = sex
        body = phys.sample_body(rng, age, sex or "unknown")
        band_name = ("child", "adult", "older")[band]
        if self.chance(pop.P_WEIGHT[band_name]):
            p["weight_kg"] = body.weight_kg
        if self.chance(pop.P_HEIGHT[band_name]):
            p["height_cm"] = body.height_cm
        drug = self._ordered_drug(band)
        self._liver(band)
        self._kidneys(age, sex or "unknown", band, body)
        self._pregnancy(age, sex)
        self._conditions(band, sex, drug)
        self._comeds(band, age, sex, drug)
        self._allergies(drug)
        order = self._order(drug)
        p["conditions"] = self._shuffled([rng.choice(self.gen.cond_reps[vs]) for vs in sorted(self.conditions)])
        p["conditions"] += [c for c, prev in pop.UNCODED_CONDITIONS.items() if self.chance(prev[band])]
        p["co_medications"] = self._shuffled([self._drug_ref(ing) for ing in sorted(self.comeds)])
        p["co_medications"] += [{"name": m} for m in self.unknown_meds]
        p["allergies"] = [self._drug_ref(ing) for ing in sorted(self.allergies)]
        p["allergies"] += [{"name": a} for a, prob in pop.ALLERGY_UNKNOWN.items() if self.chance(prob)]
        req = EvaluateRequest.model_validate({"patient": p, "drug": order})
        truth = Truth(drug, frozenset(self.comeds), frozenset(self.allergies), frozenset(self.conditions))
        return SynthPatient(pid, req, truth)

    def _shuffled(self, items: list[Any]) -> list[Any]:
        self.rng.shuffle(items)
        return items

    def _drug_ref(self, ing: str) -> dict[str, str]:
        return dict(self.rng.choice(self.gen.drug_reps[ing]))

    def _ordered_drug(self, band: int) -> str:
        table, default = (
            (pop.DRUG_WEIGHTS_CHILD, pop.DEFAULT_DRUG_WEIGHT_CHILD)
            if band == 0
            else (pop.DRUG_WEIGHTS_ADULT, pop.DEFAULT_DRUG_WEIGHT)
        )
        return _weighted(self.rng, [(d, table.get(d, default)) for d in self.gen.drugs])

    def _liver(self, band: int) -> None:
        disease: str | None = None
        for vs, prev in pop.LIVER_DISEASE.items():
            if self.chance(prev[band]) and disease is None:
                disease = vs
        if disease is None and self.chance(pop.OTHER_LIVER_DISEASE[band]):
            disease = "liver-disease"
        if disease is not None and disease in self.term.value_sets and self.chance(pop.LIVER_DISEASE_CODED):
            self.conditions.add(disease)
        self.patient["hepatic_impairment"] = _weighted(self.rng, pop.HEPATIC_CLASS_GIVEN[disease])

    def _kidneys(self, age: float, sex: str, band: int, body: phys.Body) -> None:
        p, rng = self.patient, self.rng
        true_egfr = phys.sample_true_egfr(rng, age)
        dialysis = true_egfr < 15 and self.chance(phys.DIALYSIS_SHARE_OF_STAGE5)
        if dialysis:
            p["on_dialysis"] = True
            if self.chance(pop.CODED_DIALYSIS_SHARE):
                self.conditions.add("dialysis-dependence")
        elif self.chance(0.5):
            p["on_dialysis"] = False
        if true_egfr < 60 and self.chance(pop.CODED_CKD_SHARE):
            self.conditions.add("ckd")
        if age < 18:
            scr, egfr = phys.child_labs(true_egfr, body.height_cm)
        else:
            scr, egfr = phys.adult_labs(true_egfr, age, sex)
        both, scr_only, egfr_only, _ = pop.RENAL_LABS[("child", "adult", "older")[band]]
        mode = _weighted(
            rng, [("both", both), ("scr", scr_only), ("egfr", egfr_only), ("none", 1 - both - scr_only - egfr_only)]
        )
        if mode in ("both", "scr"):
            if self.chance(pop.CREATININE_IN_UMOL):
                p["serum_creatinine_umol_l"] = round(scr * UMOL_PER_MG_DL_CREATININE)
            else:
                p["serum_creatinine_mg_dl"] = scr
        if mode in ("both", "egfr"):
            p["egfr_ml_min_1_73m2"] = egfr

    def _pregnancy(self, age: float, sex: str | None) -> None:
        p = self.patient
        if sex == "female":
            prevalence = 0.0
            for start, share in pop.PREGNANCY_BY_AGE:
                if age >= start:
                    prevalence = share
            pregnant = self.chance(prevalence)
            if pregnant:
                p["pregnant"] = True if self.chance(pop.PREGNANCY_STATUS_RECORDED) else None
                if self.chance(pop.PREGNANCY_CONDITION_CODED):
                    self.conditions.add("pregnancy")
            elif (12 <= age < 56 and self.chance(pop.NOT_PREGNANT_RECORDED_FALSE)) or (age >= 56 and self.chance(0.3)):
                p["pregnant"] = False
            if not pregnant and 18 <= age < 46 and self.chance(pop.BREASTFEEDING_18_45):
                p["breastfeeding"] = True
            elif self.chance(pop.BREASTFEEDING_RECORDED_FALSE):
                p["breastfeeding"] = False
        elif sex == "male" and self.chance(0.2):
            p["pregnant"] = False

    def _conditions(self, band: int, sex: str | None, drug: str) -> None:
        for vs, prev in pop.CONDITION_PREVALENCE.items():
            p = prev[band]
            if sex in ("female", "male"):
                p *= pop.SEX_FACTOR.get(vs, (1.0, 1.0))[0 if sex == "female" else 1]
            if band > 0 and 0 < p < pop.RARE_FLOOR:
                p = pop.RARE_FLOOR
            if drug in pop.SPASTICITY_DRUGS and vs in pop.SPASTICITY_INDICATIONS:
                p = max(p, pop.SPASTICITY_INDICATIONS[vs][band])
            if self.chance(p):
                self.conditions.add(vs)
        if "spinal-cord-injury" in self.conditions and self.chance(pop.AUTONOMIC_DYSREFLEXIA_AFTER_SCI):
            self.conditions.add("autonomic-dysreflexia")
        # value sets added to the terminology after this table was written: a small default rate
        extra = random.Random(f"{self.rng.random()}:extra")
        for vs in self.gen.other_value_sets:
            if extra.random() < pop.DEFAULT_CONDITION[band]:
                self.conditions.add(vs)
        self.conditions &= set(self.term.value_sets)

    def _comeds(self, band: int, age: float, sex: str | None, drug: str) -> None:
        for group, prev in pop.COMED_GROUPS.items():
            p = prev[band]
            if group in pop.FEMALE_ONLY:
                low, high, share = pop.FEMALE_ONLY[group]
                p = share if sex == "female" and low <= age < high else 0.0
            members = sorted(self.term.class_members.get(group, frozenset()) - {drug})
            if members and self.chance(p):
                self.comeds.add(self.rng.choice(members))
        for med, prev in pop.BACKGROUND_MEDS.items():
            if self.chance(prev[band]):
                known = self.term.by_name.get(normalise_text(med))
                if known is None:
                    self.unknown_meds.append(med)
                elif known != drug:
                    self.comeds.add(known)
        for condition, (group, share) in pop.CONDITION_TREATMENT.items():
            members = sorted(self.term.class_members.get(group, frozenset()) - {drug})
            if condition in self.conditions and members and self.chance(share):
                self.comeds.add(self.rng.choice(members))
        extra = random.Random(f"{self.rng.random()}:extra-classes")
        for group in self.gen.other_classes:
            members = sorted(self.term.class_members[group] - {drug})
            if members and extra.random() < pop.DEFAULT_COMED_GROUP[band]:
                self.comeds.add(extra.choice(members))

    def _allergies(self, drug: str) -> None:
        if self.chance(pop.ALLERGY_TO_ORDERED):
            self.allergies.add(drug)
        if self.chance(pop.ALLERGY_TO_TERMINOLOGY_DRUG):
            self.allergies.add(self.rng.choice(sorted(self.term.ingredients)))

    def _order(self, drug: str) -> dict[str, Any]:
        rng = self.rng
        action = "stop" if self.chance(pop.STOP_SHARE) else "start"
        if action == "stop" or self.chance(pop.DUPLICATE_START_SHARE):
            self.comeds.add(drug)
        order: dict[str, Any] = {"name": drug.replace("-", " "), "action": action}
        rxcui = self.term.ingredients.get(drug)
        if rxcui and self.chance(0.3):
            order = {"rxcui": rxcui, "action": action}
        if action == "start" and self.chance(pop.ORDERED_DOSE_SHARE):
            label_max = self.gen.pack.drugs[drug].profile.labelled_max_daily_mg
            times = rng.choice((1, 2, 3, 4))
            total = label_max * rng.choice(pop.ORDERED_FRACTIONS_OF_LABEL_MAX)
            dose = min(max(0.5, round(total / times * 2) / 2), 10000.0)  # schema limit per dose
            order["ordered_dose"] = {"dose_mg": dose, "times_per_day": times}
        return order


def write_jsonl(patients: Iterable[SynthPatient], path: Path) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for sp in patients:
            fh.write(json.dumps(sp.record(), separators=(",", ":"), sort_keys=True) + "\n")
            n += 1
    return n
