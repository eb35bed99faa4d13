"""The report's figures, drawn with matplotlib's Agg backend (no display, safe in CI and workers).

Each function takes the JSON summary and writes one PNG, returning its path. Counts are shown on
the figures themselves, so a reviewer reading a printed report does not need the JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from engine.harness.summary import SEVERITIES

RENAL_ORDER = ("normal", "mild", "moderate", "severe", "dialysis", "unknown")
AGE_GROUP_COLOURS = {"pediatric": "#1b9e77", "adult": "#7570b3", "older-adult": "#d95f02", "unknown": "#777777"}
AGE_BANDS = ("<2", "2-7", "8-11", "12-17", "18-64", "65-79", "80+", "unknown")
SEVERITY_CMAPS = {"critical": "Reds", "warning": "Oranges", "info": "Blues"}


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def findings_heatmap(summary: dict[str, Any], path: Path) -> Path:
    drugs = summary["results"]["drugs"]
    names = sorted(drugs)
    cats = sorted({c for d in drugs.values() for c, sev in d["findings"].items() if any(sev.values())}) or ["none"]
    fig, axes = plt.subplots(1, 3, figsize=(4.2 * 3, 0.45 * len(names) + 2.4), sharey=True)
    for ax, severity in zip(axes, SEVERITIES, strict=True):
        grid = [[drugs[d]["findings"].get(c, {}).get(severity, 0) for c in cats] for d in names]
        ax.imshow(grid, cmap=SEVERITY_CMAPS[severity], aspect="auto", vmin=0)
        ax.set_title(f"{severity} findings")
        ax.set_xticks(range(len(cats)), cats, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=9)
        peak = max((v for row in grid for v in row), default=0) or 1
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if v:
                    ax.text(
                        j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > peak / 2 else "black"
                    )
    fig.suptitle("Findings per category and severity, by ordered drug (number of patients)")
    return _save(fig, path)


def coverage_bars(summary: dict[str, Any], path: Path) -> Path:
    by_drug = summary["results"]["rules"]["by_drug"]
    names = sorted(by_drug)
    fired = [sum(1 for r in by_drug[d] if r["fires"]) for d in names]
    never = [sum(1 for r in by_drug[d] if not r["fires"]) for d in names]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.5))
    ax.barh(names, fired, color="#4c72b0", label="fired at least once")
    ax.barh(names, never, left=fired, color="#c44e52", label="never fired")
    for i, (f, n) in enumerate(zip(fired, never, strict=True)):
        ax.text(f + n + 0.3, i, f"{f}/{f + n}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rules")
    ax.set_title("Rule coverage: rules that fired at least once, per rule file owner")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _as_float(total: str) -> float | None:
    return None if total == "none" else float(total)


def start_doses(summary: dict[str, Any], drug: str, path: Path) -> Path:
    info = summary["results"]["drugs"][drug]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    groups = list(AGE_GROUP_COLOURS)
    nodose: dict[str, int] = {}
    for k, group in enumerate(groups):
        rows = [r for r in info["start_doses"] if r["age_group"] == group]
        xs, ys, sizes = [], [], []
        for r in rows:
            y = _as_float(r["total_daily_mg"])
            if y is None:
                nodose[r["renal_band"]] = nodose.get(r["renal_band"], 0) + r["n"]
                continue
            band = r["renal_band"] if r["renal_band"] in RENAL_ORDER else "unknown"
            xs.append(RENAL_ORDER.index(band) + (k - 1.5) * 0.18)
            ys.append(y)
            sizes.append(12 + 4 * r["n"] ** 0.5 * 4)
        if xs:
            left.scatter(
                xs,
                ys,
                s=sizes,
                alpha=0.6,
                color=AGE_GROUP_COLOURS[group],
                label=group,
                edgecolors="black",
                linewidths=0.3,
            )
    left.set_xticks(range(len(RENAL_ORDER)), [f"{b}\n(no dose: {nodose.get(b, 0)})" for b in RENAL_ORDER], fontsize=8)
    left.set_ylabel("suggested start, mg/day")
    left.set_ylim(bottom=0)
    left.set_title("by renal band (marker area ~ patients; colour = age group)", fontsize=10)
    if any(info["start_doses"]):
        left.legend(fontsize=8, loc="upper right")
    by_band: dict[str, list[tuple[float, int]]] = {}
    nodose_age: dict[str, int] = {}
    for r in info["start_doses_by_age"]:
        y = _as_float(r["total_daily_mg"])
        if y is None:
            nodose_age[r["age_band"]] = nodose_age.get(r["age_band"], 0) + r["n"]
        else:
            by_band.setdefault(r["age_band"], []).append((y, r["n"]))
    for i, band in enumerate(AGE_BANDS):
        pts = by_band.get(band, [])
        if pts:
            right.scatter(
                [i] * len(pts), [y for y, _ in pts], s=[12 + 16 * n**0.5 for _, n in pts], alpha=0.6, color="#4c72b0"
            )
    right.set_xticks(range(len(AGE_BANDS)), [f"{b}\n({nodose_age.get(b, 0)})" for b in AGE_BANDS], fontsize=8)
    right.set_xlabel("age band, years (no dose)", fontsize=8)
    right.set_ylim(bottom=0)
    right.set_title("by age band", fontsize=10)
    fig.suptitle(f"{drug}: suggested start doses for start orders")
    return _save(fig, path)


def missing_bars(summary: dict[str, Any], path: Path) -> Path:
    drugs = summary["results"]["drugs"]
    names = sorted(drugs)
    codes = sorted({c for d in drugs.values() for c in d["missing_data"]}) or ["none"]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.5))
    left = [0] * len(names)
    cmap = plt.get_cmap("tab10")
    for k, code in enumerate(codes):
        vals = [drugs[d]["missing_data"].get(code, 0) for d in names]
        ax.barh(names, vals, left=left, color=cmap(k % 10), label=code)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("patients (a patient may miss several items)")
    ax.set_title("What could not be checked (missing_data), by ordered drug")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)
