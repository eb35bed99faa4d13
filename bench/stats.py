"""Percentiles and rounding shared by every benchmark, so all sections report alike.

Percentiles are nearest-rank on the sorted sample (no interpolation): the p99 of 20,000 timings is
the 19,800th smallest, a value that was actually observed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES = (50, 90, 95, 99, 99.9)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _label(p: float) -> str:
    return f"p{p:g}".replace(".", "")


def summarise(values: Sequence[float], digits: int = 3) -> dict[str, float | int]:
    """n, mean, min, max and the usual percentiles of ``values`` (same unit in, same unit out)."""
    data = sorted(values)
    out: dict[str, float | int] = {"n": len(data)}
    if not data:
        return out
    out["mean"] = round(sum(data) / len(data), digits)
    out["min"] = round(data[0], digits)
    for p in PERCENTILES:
        out[_label(p)] = round(percentile(data, p), digits)
    out["max"] = round(data[-1], digits)
    return out
