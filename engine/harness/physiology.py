"""Body size and kidney function that fit a patient's age and sex, for synthetic patients.

The generator must not produce a 4-year-old of 70 kg or a creatinine that disagrees with the
reported eGFR: either would make the rules look wrong (or right) for reasons that never occur in
practice. Children follow rounded CDC 2000 growth-chart medians; adults follow NHANES-like height
and BMI distributions; creatinine is derived from a target eGFR by inverting CKD-EPI 2021 (adults)
or bedside Schwartz (children), so the two values always agree. docs/harness.md lists the numbers.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass

from engine.runtime.renal import bedside_schwartz, ckd_epi_2021

# CDC 2000 growth charts, 50th percentile, rounded (stature-for-age and weight-for-age, 2-18 y).
# Columns: age (y), boys height cm, girls height cm, boys weight kg, girls weight kg.
GROWTH_MEDIANS: tuple[tuple[float, float, float, float, float], ...] = (
    (2, 86.8, 85.7, 12.7, 12.1),
    (3, 95.2, 94.1, 14.3, 14.0),
    (4, 102.5, 101.6, 16.3, 15.9),
    (5, 109.2, 108.4, 18.4, 17.9),
    (6, 115.5, 115.1, 20.7, 20.2),
    (7, 121.9, 121.1, 22.9, 22.4),
    (8, 128.0, 127.0, 25.6, 25.4),
    (9, 133.3, 132.6, 28.6, 28.1),
    (10, 138.4, 138.6, 31.9, 31.9),
    (11, 143.5, 144.8, 35.6, 36.0),
    (12, 149.1, 151.1, 40.5, 41.5),
    (13, 156.2, 156.4, 45.6, 45.8),
    (14, 163.8, 159.8, 51.0, 49.4),
    (15, 170.1, 161.7, 56.3, 52.0),
    (16, 173.4, 162.5, 60.8, 53.9),
    (17, 175.2, 162.9, 64.4, 55.0),
    (18, 176.1, 163.2, 67.2, 56.2),
)
_AGES = [row[0] for row in GROWTH_MEDIANS]

# Adults (NHANES 2015-2018, rounded): mean height 175.4 cm (men) / 161.7 cm (women), SD about 7;
# BMI log-normal around 28.5 kg/m2 (lower after 80); height falls about 0.1 cm a year after 60.
ADULT_HEIGHT = {"male": (175.4, 7.5), "female": (161.7, 7.0)}
ADULT_BMI_MEDIAN = 28.5
ADULT_BMI_LOG_SD = 0.20
CHILD_WEIGHT_LOG_SD = 0.15
CHILD_HEIGHT_REL_SD = 0.04


@dataclass(frozen=True)
class Body:
    weight_kg: float
    height_cm: float


def _interp(age: float, col: int) -> float:
    a = min(max(age, _AGES[0]), _AGES[-1])
    i = bisect.bisect_right(_AGES, a)
    if i >= len(_AGES):
        return GROWTH_MEDIANS[-1][col]
    lo, hi = GROWTH_MEDIANS[i - 1], GROWTH_MEDIANS[i]
    f = (a - lo[0]) / (hi[0] - lo[0])
    return lo[col] + f * (hi[col] - lo[col])


def child_medians(age: float, sex: str) -> Body:
    """Median height and weight for a child (ages under 2 are clamped to the 2-year row)."""
    male = sex == "male"
    return Body(weight_kg=_interp(age, 3 if male else 4), height_cm=_interp(age, 1 if male else 2))


def sample_body(rng: random.Random, age: float, sex: str) -> Body:
    """A height and weight that fit age and sex ('other'/'unknown' sex: either table at random)."""
    table_sex = sex if sex in ("male", "female") else rng.choice(("male", "female"))
    if age < 18:
        med = child_medians(age, table_sex)
        height = med.height_cm * (1 + rng.gauss(0, CHILD_HEIGHT_REL_SD))
        weight = med.weight_kg * math.exp(rng.gauss(0, CHILD_WEIGHT_LOG_SD))
    else:
        mean, sd = ADULT_HEIGHT[table_sex]
        height = rng.gauss(mean, sd) - 0.1 * max(0.0, age - 60)
        bmi_median = ADULT_BMI_MEDIAN - (2.0 if age >= 80 else 0.0)
        bmi = bmi_median * math.exp(rng.gauss(0, ADULT_BMI_LOG_SD))
        weight = bmi * (height / 100) ** 2
    return Body(weight_kg=round(min(max(weight, 8.0), 250.0), 1), height_cm=round(min(max(height, 70.0), 210.0), 1))


# ---- kidney function ---------------------------------------------------------------------------

# Share of patients with eGFR under 60 by age (CDC CKD Surveillance / NHANES, stages 3-5, rounded),
# and how the impaired share splits over the stages (3a, 3b, 4, 5) as (low, high, weight).
CKD_PREVALENCE = ((18, 0.01), (40, 0.03), (60, 0.12), (70, 0.25), (80, 0.40))
CKD_STAGES = ((45.0, 59.9, 0.55), (30.0, 44.9, 0.27), (15.0, 29.9, 0.12), (5.0, 14.9, 0.06))
DIALYSIS_SHARE_OF_STAGE5 = 0.7
PEDIATRIC_CKD = 0.005


def ckd_prevalence(age: float) -> float:
    share = 0.0
    for start, p in CKD_PREVALENCE:
        if age >= start:
            share = p
    return share


def sample_true_egfr(rng: random.Random, age: float) -> float:
    """The patient's kidney function (mL/min/1.73 m2) before any lab is drawn."""
    if age < 18:
        if rng.random() < PEDIATRIC_CKD:
            return rng.uniform(15, 59)
        return min(max(rng.gauss(112, 15), 75.0), 160.0)
    if rng.random() < ckd_prevalence(age):
        r = rng.random() * sum(w for _, _, w in CKD_STAGES)
        for low, high, w in CKD_STAGES:
            if r < w:
                return rng.uniform(low, high)
            r -= w
        return rng.uniform(*CKD_STAGES[-1][:2])
    # healthy kidneys: about 115 at 20-30, falling about 0.9 a year after 30 (never below 60)
    mean = 115 - 0.9 * max(0.0, age - 30)
    return min(max(rng.gauss(mean, 13), 60.0), 150.0)


def creatinine_for_egfr(egfr: float, age: float, female: bool) -> float:
    """Serum creatinine (mg/dL) that CKD-EPI 2021 maps to ``egfr`` (the equation inverted)."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    base = 142.0 * 0.9938**age * (1.012 if female else 1.0)
    ratio = (base / egfr) ** (1 / 1.2) if egfr <= base else (egfr / base) ** (1 / alpha)
    return float(kappa * ratio)


def adult_labs(true_egfr: float, age: float, sex: str) -> tuple[float, float]:
    """(creatinine mg/dL to 2 decimals, eGFR as a lab reports it) - consistent by construction.

    Unknown or 'other' sex uses the female coefficients, as the engine does (engine.runtime.renal).
    """
    female = sex != "male"
    scr = round(min(max(creatinine_for_egfr(true_egfr, age, female), 0.2), 20.0), 2)
    return scr, round(ckd_epi_2021(age, scr, female))


def child_labs(true_egfr: float, height_cm: float) -> tuple[float, float]:
    """(creatinine mg/dL, bedside Schwartz eGFR) for a child of this height."""
    scr = round(min(max(0.413 * height_cm / true_egfr, 0.1), 10.0), 2)
    return scr, round(bedside_schwartz(height_cm, scr))
