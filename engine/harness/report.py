"""Write a cohort's report: ``summary.json``, one PNG per figure, and a single-file ``report.html``.

The HTML embeds its figures as data URIs so it can be mailed to the medication-safety committee
as one file; the PNGs stay beside it for slides. matplotlib is imported only here, lazily, so the
rest of the CLI does not pay for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.report_files import REPORT_FILE, data_uri, start_report


def _safe(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower())


def write_report(summary: dict[str, Any], out: Path) -> Path:
    """Write everything into ``out`` (created if needed); returns the HTML path."""
    import jinja2

    from engine.harness import plots
    from engine.harness.report_template import REPORT_HTML

    img = start_report(summary, out)
    pngs = {
        "findings": plots.findings_heatmap(summary, img / "findings.png"),
        "coverage": plots.coverage_bars(summary, img / "rule-coverage.png"),
        "missing": plots.missing_bars(summary, img / "missing-data.png"),
    }
    for drug, info in summary["results"]["drugs"].items():
        if info["orders"]["start"]:
            pngs["dose_" + drug] = plots.start_doses(summary, drug, img / f"start-doses-{_safe(drug)}.png")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(REPORT_HTML).render(
        meta=summary["meta"],
        r=summary["results"],
        warnings=summary["warnings"],
        images={k: data_uri(p) for k, p in pngs.items()},
    )
    path = out / REPORT_FILE
    path.write_text(html, encoding="utf-8")
    return path
