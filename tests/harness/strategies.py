"""Hypothesis strategies for patients ordering one drug, built from the compiled pack.

Unlike ``cdsrules synth`` (realistic proportions), these aim at the corners: ages on every cut-off
the drug's rules use, renal values on both sides of every threshold, every tri-state flag, and
co-medications/allergies/conditions biased towards what the drug's rules test. Every draw records
its ``Truth`` so invariants compare the engine with what was sent. Shrinking works on each field,
so a failure is reported as the smallest patient that still breaks the invariant.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from engine.compiler.model import CompiledPack
from engine.harness.case import Case
from engine.harness.physiology import child_medians
from engine.harness.rulemap import RENAL_FIELDS, SET_FIELDS, drug_map
from engine.harness.synth import Generator, Truth
from schemas.api import EvaluateRequest

_GENERATORS: dict[int, Generator] = {}


def _reps(pack: CompiledPack) -> Generator:
    """Representation indexes (names, codes) of the pack's terminology, built once per pack."""
    if id(pack) not in _GENERATORS:
        _GENERATORS[id(pack)] = Generator(pack, seed=0)
    return _GENERATORS[id(pack)]


def _near(cuts: list[float], step: float, low: float, high: float) -> list[float]:
    return sorted({round(v, 2) for t in cuts for v in (t - step, t, t + step) if low <= v <= high})


def _median_weight(age: float, sex: str | None) -> float:
    if age < 18:
        return child_medians(age, sex or "female").weight_kg
    return 78.0 if sex == "male" else 66.0


class _PackRef:
    """Keeps the pack out of Hypothesis' strategy repr (printing a whole pack costs seconds)."""

    def __init__(self, pack: CompiledPack) -> None:
        self.pack = pack

    def __repr__(self) -> str:
        return f"<rule pack {self.pack.version}>"


def cases(pack: CompiledPack, drug: str, action: str | None = None) -> st.SearchStrategy[Case]:
    """Patients ordering ``drug`` (``action`` fixed or drawn)."""
    return _cases(_PackRef(pack), drug, action)


@st.composite
def _cases(draw: st.DrawFn, ref: _PackRef, drug: str, action: str | None) -> Case:
    pack = ref.pack
    gen, term, dm = _reps(pack), pack.terminology, drug_map(pack, drug)
    age_cuts = _near(dm.thresholds(("age_years",)), 0.01, 0, 125)
    age = draw(st.one_of(st.none(), st.sampled_from(age_cuts or [40.0]), st.floats(0, 100).map(lambda a: round(a, 1))))
    sex = draw(st.sampled_from(["female", "male", "other", "unknown", None]))
    p: dict[str, Any] = {"age_years": age, "sex": sex}
    ref_age = 40.0 if age is None else age
    if draw(st.booleans()) or ref_age < 18:
        factor = draw(st.floats(0.6, 1.8))
        p["weight_kg"] = round(max(1.0, _median_weight(ref_age, sex) * factor), 1) if draw(st.integers(0, 9)) else None
    if draw(st.booleans()):
        p["height_cm"] = round(min(max(child_medians(min(ref_age, 18), sex or "female").height_cm, 45), 200), 1)
    renal = draw(st.sampled_from(["none", "egfr", "scr", "both", "umol"]))
    renal_cuts = _near(dm.thresholds(RENAL_FIELDS), 0.5, 0, 250)
    if renal in ("egfr", "both"):
        p["egfr_ml_min_1_73m2"] = draw(st.one_of(st.sampled_from(renal_cuts or [60.0]), st.floats(1, 150).map(round)))
    if renal in ("scr", "both"):
        p["serum_creatinine_mg_dl"] = draw(st.floats(0.2, 12).map(lambda x: round(x, 2)))
    if renal == "umol":
        p["serum_creatinine_umol_l"] = draw(st.integers(20, 1000))
    p["on_dialysis"] = draw(st.sampled_from([None, False, True]))
    p["hepatic_impairment"] = draw(st.sampled_from(["none", "mild", "moderate", "severe", "unknown"]))
    flags = [None, False] if sex == "male" else [None, False, True]
    p["pregnant"] = draw(st.sampled_from(flags))
    p["breastfeeding"] = draw(st.sampled_from(flags))

    tested = {v for f in SET_FIELDS for r in dm.rules.rules for v in dm.trigger_values(r, f)}
    interesting_ings = sorted(
        {i for c in tested for i in term.class_members.get(c, ())} | (tested & set(term.ingredients))
    )
    all_ings = sorted(term.ingredients)
    ing = st.one_of(st.sampled_from(interesting_ings or all_ings), st.sampled_from(all_ings))
    comeds = draw(st.lists(ing, max_size=5, unique=True))
    allergies = draw(st.lists(st.one_of(st.just(drug), ing), max_size=2, unique=True))
    value_sets = sorted(term.value_sets)
    vs_tested = sorted(tested & set(value_sets))
    vs = st.one_of(st.sampled_from(vs_tested or value_sets), st.sampled_from(value_sets))
    conditions = draw(st.lists(vs, max_size=4, unique=True))
    if sex == "male" and "pregnancy" in conditions:
        conditions.remove("pregnancy")
    p["co_medications"] = [draw(st.sampled_from(gen.drug_reps[i])) for i in comeds]
    p["allergies"] = [draw(st.sampled_from(gen.drug_reps[i])) for i in allergies]
    p["conditions"] = [draw(st.sampled_from(gen.cond_reps[c])) for c in conditions if c in gen.cond_reps]

    act = action or draw(st.sampled_from(["start", "stop"]))
    order: dict[str, Any] = {"name": drug.replace("-", " "), "action": act}
    if act == "start" and draw(st.integers(0, 4)) == 0:
        label = pack.drugs[drug].profile.labelled_max_daily_mg
        times = draw(st.integers(1, 4))
        per_dose = min(round(label * draw(st.floats(0.05, 1.5)) / times + 0.5, 1), 10000)
        order["ordered_dose"] = {"dose_mg": per_dose, "times_per_day": times}
    body = {"patient": {k: v for k, v in p.items() if v is not None}, "drug": order}
    truth = Truth(
        drug, frozenset(comeds), frozenset(allergies), frozenset(c for c in conditions if c in term.value_sets)
    )
    return Case("hypothesis", EvaluateRequest.model_validate(body), truth)
