"""Renal function estimates: Cockcroft-Gault, CKD-EPI 2021 and bedside Schwartz.

Which estimate was used, and with which body weight, is always reported; when two are available
the lower wins (conservative), as the clinical reference (§11, renal-function convention) asks.

Body weight for Cockcroft-Gault (issue 13, M2). Total body weight overestimates creatinine
clearance in obesity (Demirovic, Pai & Pai, Am J Health Syst Pharm 2009;66:642-648: C-G with total
weight "grossly overestimated" measured clearance in morbid obesity). With a height, a weight above
``OBESE_RATIO`` x ideal body weight (Devine 1974) uses the adjusted body weight
IBW + 0.4 x (TBW - IBW), the common pharmacy convention (ClinCalc CrCl calculator: adjusted weight
when more than 30% above IBW); a weight at or below that uses the actual weight (below IBW the actual
weight is lower still, so conservative). Without a height obesity cannot be ruled out, so the lower
of C-G (total weight) and CKD-EPI 2021 is used.

Low creatinine (issue 13, m2): no floor is applied. Rounding a low serum creatinine up (to about
1 mg/dL) in older or cachectic patients explained less of the variance of measured clearance than
the actual value (Bertino, Ann Pharmacother 1993;27:1439-1442), so the measured value is used and
the method says the estimate may overstate clearance; the CKD-EPI comparison without height and the
Beers rules (65+) keep such patients on the cautious side.
"""

from __future__ import annotations

from dataclasses import dataclass

OBESE_RATIO = 1.3  # actual / ideal body weight above which the adjusted weight is used
ADJUSTMENT = 0.4  # fraction of the excess weight counted (adjusted body weight)
LOW_SCR_MG_DL = 0.7  # below this, in 65+, say that C-G may overstate clearance
CM_PER_INCH = 2.54


@dataclass(frozen=True)
class RenalEstimate:
    value_ml_min: float | None
    method: str
    crcl_ml_min: float | None = None
    egfr_ml_min: float | None = None
    weight_used_kg: float | None = None  # the weight Cockcroft-Gault was computed with, when it was


def cockcroft_gault(age: float, weight_kg: float, scr_mg_dl: float, female: bool) -> float:
    """CrCl (mL/min) with the given body weight (Cockcroft & Gault, Nephron 1976)."""
    crcl = (140.0 - age) * weight_kg / (72.0 * scr_mg_dl)
    return max(0.0, crcl * (0.85 if female else 1.0))


def ckd_epi_2021(age: float, scr_mg_dl: float, female: bool) -> float:
    """eGFR (mL/min/1.73 m²), race-free CKD-EPI 2021 creatinine equation (Inker, NEJM 2021)."""
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = scr_mg_dl / kappa
    egfr: float = 142.0 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938**age
    return egfr * (1.012 if female else 1.0)


def bedside_schwartz(height_cm: float, scr_mg_dl: float) -> float:
    """eGFR (mL/min/1.73 m²) for children, bedside Schwartz (Schwartz, JASN 2009)."""
    return 0.413 * height_cm / scr_mg_dl


def ideal_body_weight(height_cm: float, female: bool) -> float:
    """Devine (1974): 50 kg (45.5 kg female) + 2.3 kg per inch over 5 feet; never below 1 kg."""
    return max(1.0, (45.5 if female else 50.0) + 2.3 * (height_cm / CM_PER_INCH - 60.0))


def dosing_weight(weight_kg: float, height_cm: float | None, female: bool) -> tuple[float, str]:
    """The weight for Cockcroft-Gault and how it was chosen (see the module docstring)."""
    if height_cm is None:
        return weight_kg, f"actual body weight {weight_kg:g} kg"
    ibw = round(ideal_body_weight(height_cm, female), 1)
    if weight_kg > OBESE_RATIO * ibw:
        adj = round(ibw + ADJUSTMENT * (weight_kg - ibw), 1)
        pct = round(100 * weight_kg / ibw)
        return adj, f"adjusted body weight {adj:g} kg (actual {weight_kg:g} kg is {pct}% of ideal {ibw:g} kg)"
    return weight_kg, f"actual body weight {weight_kg:g} kg (ideal {ibw:g} kg)"


def estimate(
    age: float | None,
    sex: str | None,
    weight_kg: float | None,
    height_cm: float | None,
    scr_mg_dl: float | None,
    egfr_reported: float | None,
) -> RenalEstimate:
    """The renal function to dose by, and how it was obtained."""
    female = sex != "male"  # unknown sex: the female factor gives the lower (safer) estimate
    sex_note = "" if sex in ("female", "male") else " (sex unknown: female factor used, conservative)"
    crcl: float | None = None
    computed_egfr: float | None = None
    weight_used: float | None = None
    cg_note = ""
    method = ""
    if scr_mg_dl is not None and age is not None:
        if age >= 18 and weight_kg is not None:
            weight_used, weight_words = dosing_weight(weight_kg, height_cm, female)
            crcl = round(cockcroft_gault(age, weight_used, scr_mg_dl, female), 1)
            cg_note = f" with {weight_words}"
            if age >= 65 and scr_mg_dl < LOW_SCR_MG_DL:
                cg_note += f"; creatinine {scr_mg_dl:g} mg/dL used as measured (no floor), may overstate clearance"
            method = "cockcroft-gault" + cg_note + sex_note
            if height_cm is None and egfr_reported is None:
                # no height: obesity cannot be ruled out, so CKD-EPI 2021 is the check on C-G
                computed_egfr = round(ckd_epi_2021(age, scr_mg_dl, female), 1)
                if computed_egfr < crcl:
                    method = (
                        "lower of cockcroft-gault and ckd-epi-2021 (no height to check body weight): "
                        f"ckd-epi-2021 {computed_egfr:g}, cockcroft-gault {crcl:g}{cg_note}{sex_note}"
                    )
                    return RenalEstimate(computed_egfr, method, crcl, computed_egfr, weight_used)
                method += f" (ckd-epi-2021 {computed_egfr:g} checked, not lower)"
                computed_egfr = None  # reported only in the method: the egfr field is reported or used eGFR
        elif age >= 18 and egfr_reported is None:
            computed_egfr = round(ckd_epi_2021(age, scr_mg_dl, female), 1)
            method = "ckd-epi-2021 from creatinine (no weight for Cockcroft-Gault)" + sex_note
        elif age < 18 and height_cm is not None and egfr_reported is None:
            computed_egfr = round(bedside_schwartz(height_cm, scr_mg_dl), 1)
            method = "bedside-schwartz"
    egfr = egfr_reported if egfr_reported is not None else computed_egfr
    if egfr_reported is not None:
        if crcl is not None:
            value = min(crcl, egfr_reported)
            method = "lower of cockcroft-gault and reported eGFR" + sex_note + f" (cockcroft-gault{cg_note})"
        else:
            value = egfr_reported
            method = "reported eGFR"
        return RenalEstimate(round(value, 1), method, crcl, egfr, weight_used)
    if crcl is not None:
        return RenalEstimate(crcl, method, crcl, computed_egfr, weight_used)
    if computed_egfr is not None:
        return RenalEstimate(computed_egfr, method, None, computed_egfr)
    return RenalEstimate(None, "not available", None, None)
