"""Frequencies are worded as prescriptions word them, by one function, everywhere a finding states one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.runtime.engine import Engine
from engine.runtime.frequency import frequency_words
from engine.runtime.outcome import DOSE_RANGE_RULE
from schemas.api import EvaluateRequest, OrderedDose


@pytest.mark.parametrize(
    ("per_day", "every", "words"),
    [
        (1, None, "once daily"),
        (2, None, "twice daily"),
        (3, None, "three times daily"),
        (4, None, "four times daily"),
        (5, None, "5 times daily"),
        (6, None, "6 times daily"),
        (2.5, None, "2.5 times daily"),
        (0.5, None, "every other day"),
        (3, 8, "every 8 hours"),
        (6, 4, "every 4 hours"),
        (24, 1, "every hour"),
        (3, 6, "three times daily"),  # an interval that does not match the count is not used
    ],
)
def test_frequency_words(per_day: float, every: float | None, words: str) -> None:
    assert frequency_words(per_day, every) == words


def _dose_range_detail(engine: Engine, ordered: dict[str, float]) -> str:
    req = EvaluateRequest.model_validate(
        {
            "patient": {"age_years": 45, "sex": "male", "weight_kg": 80, "egfr_ml_min_1_73m2": 100},
            "drug": {"name": "baclofen", "ordered_dose": ordered},
        }
    )
    (finding,) = [f for f in engine.evaluate(req).findings if f.rule_id == DOSE_RANGE_RULE]
    return finding.detail


def test_the_dose_range_finding_says_three_times_daily(engine: Engine) -> None:
    detail = _dose_range_detail(engine, {"dose_mg": 10, "times_per_day": 3})
    assert "The order is 10 mg three times daily (30 mg/day)" in detail
    assert "Suggested start for this patient: 5 mg three times daily" in detail
    assert "times a day" not in detail


def test_the_dose_range_finding_keeps_an_interval_as_written(engine: Engine) -> None:
    detail = _dose_range_detail(engine, {"dose_mg": 30, "times_per_day": 3, "every_hours": 8})
    assert "The order is 30 mg every 8 hours (90 mg/day)" in detail


def test_an_interval_that_contradicts_the_count_is_refused() -> None:
    with pytest.raises(ValidationError, match="every_hours 6 does not match times_per_day 3"):
        OrderedDose(dose_mg=10, times_per_day=3, every_hours=6)
