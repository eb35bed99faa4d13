"""How often a dose is taken, in the words a prescriber writes: the one wording for every card and finding.

"3 times a day" reads as machine output, and "1 times a day" is wrong English; prescriptions say
"once daily", "twice daily", "three times daily", "four times daily", or "every 8 hours" when the
order was written as an interval. Beyond four a day the count is spelled "N times daily". Every
text that states a frequency (findings, dose cards, suggested dosage text, rule docs) uses
``frequency_words`` so the same regimen is never worded two ways.
"""

from __future__ import annotations

_WORDS = {1: "once daily", 2: "twice daily", 3: "three times daily", 4: "four times daily"}


def frequency_words(times_per_day: float, every_hours: float | None = None) -> str:
    """ "three times daily"; "every 8 hours" when the order gave that interval (and it matches)."""
    if every_hours is not None and every_hours > 0 and abs(times_per_day * every_hours - 24) <= 0.01:
        return "every hour" if every_hours == 1 else f"every {every_hours:g} hours"
    n = float(times_per_day)
    if n.is_integer() and int(n) in _WORDS:
        return _WORDS[int(n)]
    if 0 < n < 1 and (1 / n).is_integer():
        days = int(1 / n)
        return "every other day" if days == 2 else f"every {days} days"
    return f"{n:g} times daily"
