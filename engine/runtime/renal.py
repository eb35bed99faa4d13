"""Renal function estimates: Cockcroft-Gault, CKD-EPI 2021 and bedside Schwartz.

Which estimate was used is always reported; when two are available the lower wins (conservative),
as the clinical reference (§11, renal-function convention) asks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RenalEstimate:
    value_ml_min: float | None
    method: str
    crcl_ml_min: float | None = None
    egfr_ml_min: float | None = None


def cockcroft_gault(age: float, weight_kg: float, scr_mg_dl: float, female: bool) -> float:
    """CrCl (mL/min) with actual body weight (Cockcroft & Gault, Nephron 1976)."""
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
    method = ""
    if scr_mg_dl is not None and age is not None:
        if age >= 18 and weight_kg is not None:
            crcl = round(cockcroft_gault(age, weight_kg, scr_mg_dl, female), 1)
            method = "cockcroft-gault" + sex_note
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
            method = "lower of cockcroft-gault and reported eGFR" + sex_note
        else:
            value = egfr_reported
            method = "reported eGFR"
        return RenalEstimate(round(value, 1), method, crcl, egfr)
    if crcl is not None:
        return RenalEstimate(crcl, method, crcl, None)
    if computed_egfr is not None:
        return RenalEstimate(computed_egfr, method, None, computed_egfr)
    return RenalEstimate(None, "not available", None, None)
