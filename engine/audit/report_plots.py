"""The override report's figures, drawn with matplotlib's Agg backend (no display, safe in CI).

Each function takes the analytics summary and writes one PNG, returning its path. Cards are named
by rule id (or "not checked" for the card no rule owns) with their severity, since the same rule
can show at two severities.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

SEVERITY_COLOURS = {"critical": "#c0392b", "warning": "#e67e22", "info": "#2980b9"}
MAX_TREND_LINES = 8  # more lines than this on one axis cannot be told apart


def card_label(card: dict[str, Any]) -> str:
    return f"{card['rule_id'] or 'not checked'} ({card['severity']})"


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def override_rates(summary: dict[str, Any], path: Path) -> Path:
    """Override rate per card with its 95 % Wilson interval; the count of responses on each bar."""
    cards = [c for c in summary["cards"] if c["responded"]]
    cards.sort(key=lambda c: c["override_rate"])
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(cards) + 1.6))
    if not cards:
        _empty(ax, "no feedback in this period")
        return _save(fig, path)
    labels = [card_label(c) for c in cards]
    rates = [c["override_rate"] for c in cards]
    lows = [c["override_rate"] - c["override_rate_ci95"][0] for c in cards]
    highs = [c["override_rate_ci95"][1] - c["override_rate"] for c in cards]
    colours = [SEVERITY_COLOURS.get(c["severity"], "#777777") for c in cards]
    ax.barh(labels, rates, xerr=[lows, highs], color=colours, capsize=3)
    for i, c in enumerate(cards):
        ax.text(1.01, i, f"{c['overridden']}/{c['responded']}", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("override rate (overridden / cards with feedback), 95 % Wilson interval")
    ax.set_title("Override rate by card")
    return _save(fig, path)


def weekly_trend(summary: dict[str, Any], path: Path) -> Path:
    """Weekly override rate of the most-shown rules."""
    shown: dict[str, int] = defaultdict(int)
    for w in summary["weekly"]:
        shown[w["rule_id"] or "not checked"] += w["shown"]
    top = sorted(shown, key=lambda r: -shown[r])[:MAX_TREND_LINES]
    fig, ax = plt.subplots(figsize=(9, 4))
    lines = 0
    for rule in top:
        points = [(w["week"], w["override_rate"]) for w in summary["weekly"] if (w["rule_id"] or "not checked") == rule]
        points = [(wk, r) for wk, r in points if r is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=rule)
            lines += 1
    if not lines:
        _empty(ax, "no feedback in this period")
        return _save(fig, path)
    ax.set_ylim(0, 1)
    ax.set_ylabel("override rate")
    ax.set_xlabel("week starting (Monday, UTC)")
    ax.set_title("Override rate by week")
    ax.legend(fontsize=8, loc="best")
    ax.tick_params(axis="x", rotation=45)
    return _save(fig, path)


def reasons(summary: dict[str, Any], path: Path) -> Path:
    """Override reasons per card, stacked."""
    cards = [c for c in summary["cards"] if c["override_reasons"]]
    codes = sorted({code for c in cards for code in c["override_reasons"]})
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(cards) + 1.6))
    if not cards:
        _empty(ax, "no overrides in this period")
        return _save(fig, path)
    labels = [card_label(c) for c in cards]
    left = [0] * len(cards)
    for code in codes:
        counts = [c["override_reasons"].get(code, 0) for c in cards]
        ax.barh(labels, counts, left=left, label=code)
        left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.set_xlabel("overridden cards")
    ax.set_title("Override reasons by card")
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)
