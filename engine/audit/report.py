"""Write the override report: ``summary.json`` and a single-file ``report.html`` with its figures.

Like the cohort report, the HTML embeds its PNGs as data URIs so it can be mailed to the
medication-safety committee as one file; the PNGs stay beside it for slides. matplotlib and
jinja2 (the ``harness`` extra) are imported only here, lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.report_files import BASE_CSS, REPORT_FILE, data_uri, start_report

REPORT_HTML = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>cdsrules override report</title>
<style>"""
    + BASE_CSS
    + """</style></head><body>
<h1>Override report</h1>
<table>
<tr><th>period</th><td>{{ s.period.since or 'start' }} to {{ s.period.until or 'now' }}
{% if s.period.rule_id %}; rule <code>{{ s.period.rule_id }}</code>{% endif %}</td></tr>
<tr><th>cards shown</th><td id="total-shown">{{ s.totals.shown }}</td></tr>
<tr><th>with feedback</th><td>{{ s.totals.responded }} ({{ s.totals.accepted }} accepted,
 {{ s.totals.overridden }} overridden)</td></tr>
<tr><th>override rate</th><td>{{ pct(s.totals.override_rate) }} {{ ci(s.totals.override_rate_ci95) }}</td></tr>
</table>
<p>Override rate = overridden / cards with any feedback; 95 % Wilson score interval in brackets.
Cards the EHR sent no feedback for are counted as shown only.</p>
{% if s.jumps %}<div class="warn" id="jumps"><strong>Override rate changed with a pack version</strong><ul>
{% for j in s.jumps %}<li><code>{{ j.rule_id }}</code>: {{ pct(j.from_rate) }} in {{ j.from_version }},
 {{ pct(j.to_rate) }} in {{ j.to_version }}</li>{% endfor %}</ul></div>{% endif %}
<h2>By card</h2>
<img id="fig-rates" alt="override rate by card" src="{{ images.rates }}">
<table id="cards"><tr><th>rule</th><th>severity</th><th>topic</th><th>shown</th><th>accepted</th>
<th>overridden</th><th>override rate</th><th>suggestion accepted</th><th>reasons</th><th>comments</th></tr>
{% for c in s.cards %}<tr><td><code>{{ c.rule_id or 'not checked' }}</code></td><td>{{ c.severity }}</td>
<td>{{ c.topic }}</td><td class="n">{{ c.shown }}</td><td class="n">{{ c.accepted }}</td>
<td class="n">{{ c.overridden }}</td><td>{{ pct(c.override_rate) }} {{ ci(c.override_rate_ci95) }}</td>
<td>{% if c.with_suggestion %}{{ c.suggestion_accepted }}/{{ c.with_suggestion }}
 ({{ pct(c.suggestion_acceptance_rate) }}){% else %}-{% endif %}</td>
<td>{% for code, n in c.override_reasons|dictsort %}{{ code }}: {{ n }}<br>{% endfor %}</td>
<td class="n">{{ c.comments }}</td></tr>{% endfor %}
</table>
<h2>Override reasons</h2>
<img id="fig-reasons" alt="override reasons by card" src="{{ images.reasons }}">
<h2>Trend by week</h2>
<img id="fig-weekly" alt="override rate by week" src="{{ images.weekly }}">
<h2>By pack version</h2>
<table id="versions"><tr><th>rule</th><th>pack version</th><th>first seen</th><th>shown</th>
<th>overridden</th><th>override rate</th></tr>
{% for v in s.versions %}<tr><td><code>{{ v.rule_id or 'not checked' }}</code></td><td>{{ v.ruleset_version }}</td>
<td>{{ v.first_seen }}</td><td class="n">{{ v.shown }}</td><td class="n">{{ v.overridden }}</td>
<td>{{ pct(v.override_rate) }} {{ ci(v.override_rate_ci95) }}</td></tr>{% endfor %}
</table>
</body></html>
"""
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _ci(value: list[float] | None) -> str:
    return "" if value is None else f"[{100 * value[0]:.1f}-{100 * value[1]:.1f} %]"


def write_report(summary: dict[str, Any], out: Path) -> Path:
    """Write ``summary.json``, the PNGs and ``report.html`` into ``out``; returns the HTML path."""
    import jinja2

    from engine.audit import report_plots as plots

    img = start_report(summary, out)
    pngs = {
        "rates": plots.override_rates(summary, img / "override-rates.png"),
        "reasons": plots.reasons(summary, img / "override-reasons.png"),
        "weekly": plots.weekly_trend(summary, img / "weekly-trend.png"),
    }
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    html = env.from_string(REPORT_HTML).render(
        s=summary, images={k: data_uri(p) for k, p in pngs.items()}, pct=_pct, ci=_ci
    )
    path = out / REPORT_FILE
    path.write_text(html, encoding="utf-8")
    return path
