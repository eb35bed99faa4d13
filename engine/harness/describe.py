"""Observed distributions of a synthetic cohort, for docs/harness.md and for realism tests.

The population tables say what we meant; this says what came out, so a reviewer can compare the
two (``cdsrules synth --describe``) and a test can fail when they drift apart.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from engine.harness.synth import SynthPatient


def _share(n: int, d: int) -> float:
    return round(n / d, 4) if d else 0.0


def _band(age: float | None) -> str:
    if age is None:
        return "unknown"
    return "child" if age < 18 else "adult" if age < 65 else "older"


def describe(patients: Sequence[SynthPatient], classes_of: dict[str, frozenset[str]]) -> dict[str, Any]:
    n = len(patients)
    bands: Counter[str] = Counter()
    weights: dict[str, list[float]] = {}
    missing_weight: Counter[str] = Counter()
    renal: Counter[str] = Counter()
    egfr_bins: Counter[str] = Counter()
    sex: Counter[str] = Counter()
    hepatic: Counter[str] = Counter()
    drugs: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    conditions: Counter[str] = Counter()
    comed_classes: Counter[str] = Counter()
    women_15_44 = pregnant = breastfeeding = dialysis = ordered_dose = allergy_to_ordered = 0
    for sp in patients:
        p, truth = sp.request.patient, sp.truth
        band = _band(p.age_years)
        bands[band] += 1
        sex[p.sex or "not sent"] += 1
        if p.weight_kg is None:
            missing_weight[band] += 1
        else:
            weights.setdefault(band, []).append(p.weight_kg)
        has_scr = p.creatinine_mg_dl() is not None
        has_egfr = p.egfr_ml_min_1_73m2 is not None
        renal[
            {(True, True): "both", (True, False): "creatinine only", (False, True): "eGFR only"}.get(
                (has_scr, has_egfr), "none"
            )
        ] += 1
        if has_egfr and p.egfr_ml_min_1_73m2 is not None:
            e = p.egfr_ml_min_1_73m2
            egfr_bins[
                "<15" if e < 15 else "15-29" if e < 30 else "30-59" if e < 60 else "60-89" if e < 90 else ">=90"
            ] += 1
        dialysis += bool(p.on_dialysis)
        hepatic[p.hepatic_impairment] += 1
        if p.sex == "female" and p.age_years is not None and 15 <= p.age_years < 45:
            women_15_44 += 1
            pregnant += bool(p.pregnant)
            breastfeeding += bool(p.breastfeeding)
        drugs[truth.ordered] += 1
        actions[sp.request.drug.action] += 1
        ordered_dose += sp.request.drug.ordered_dose is not None
        allergy_to_ordered += truth.ordered in truth.allergy_ingredients
        conditions.update(truth.conditions)
        comed_classes.update({c for ing in truth.comed_ingredients - {truth.ordered} for c in classes_of.get(ing, ())})
    return {
        "patients": n,
        "age_band": {k: _share(v, n) for k, v in sorted(bands.items())},
        "sex": {k: _share(v, n) for k, v in sorted(sex.items())},
        "weight_kg_median": {k: round(statistics.median(v), 1) for k, v in sorted(weights.items())},
        "weight_missing": {k: _share(missing_weight[k], bands[k]) for k in sorted(bands)},
        "renal_labs": {k: _share(v, n) for k, v in sorted(renal.items())},
        "reported_egfr": {k: _share(v, sum(egfr_bins.values())) for k, v in sorted(egfr_bins.items())},
        "on_dialysis": _share(dialysis, n),
        "hepatic_impairment": {k: _share(v, n) for k, v in sorted(hepatic.items())},
        "pregnant_among_women_15_44": _share(pregnant, women_15_44),
        "breastfeeding_among_women_15_44": _share(breastfeeding, women_15_44),
        "ordered_drug": {k: _share(v, n) for k, v in sorted(drugs.items())},
        "action": {k: _share(v, n) for k, v in sorted(actions.items())},
        "ordered_dose_sent": _share(ordered_dose, n),
        "allergy_to_ordered_drug": _share(allergy_to_ordered, n),
        "conditions": {k: _share(v, n) for k, v in conditions.most_common()},
        "comed_classes": {k: _share(v, n) for k, v in comed_classes.most_common()},
    }
