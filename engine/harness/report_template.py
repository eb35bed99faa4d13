"""The cohort report's HTML, kept as a string so the report works from any install (no data files).

Autoescaped jinja2: patient ids and unrecognised inputs come from data nobody on the team wrote.
"""

from __future__ import annotations

from engine.report_files import BASE_CSS

REPORT_HTML = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>cdsrules cohort report - {{ meta.source }}</title>
<style>"""
    + BASE_CSS
    + """.bad { background: #f8d7da; }
.ok { color: #1b7a1b; }
code { font-size: 12px; }
details { margin: .4em 0; }
</style></head><body>
<h1>Cohort report</h1>
<table>
<tr><th>cohort</th><td>{{ meta.source }}</td></tr>
<tr><th>rule pack</th><td>{{ meta.ruleset.version }} <code>{{ meta.ruleset.digest }}</code></td></tr>
<tr><th>patients</th><td>{{ r.patients }} lines, {{ r.evaluated }} evaluated,
 {{ r.input_errors }} invalid, {{ r.evaluation_errors }} evaluation errors</td></tr>
<tr><th>run</th><td>{{ meta.engine }}{% if meta.workers %}, {{ meta.workers }} worker(s){% endif %};
 {{ '%.1f' % meta.seconds }} s, {{ '%.0f' % meta.patients_per_second }} patients/s</td></tr>
<tr><th>checks</th><td{% if not (r.checks.differential and r.checks.invariants) %} class="bad"{% endif %}>
 differential check: {{ r.checks.differential }} patients;
 safety invariants: {{ r.checks.invariants }} patients
 {% if r.checks.invariant_names %}({{ r.checks.invariant_names|join(', ') }}){% endif %}</td></tr>
</table>
{% if warnings %}<div class="warn"><strong>Warnings</strong><ul>
{% for w in warnings %}<li>{{ w }}</li>{% endfor %}</ul>
{% if r.rules.never_fired %}<details><summary>Rules that never fired ({{ r.rules.never_fired|length }})</summary>
<ul>{% for rid in r.rules.never_fired %}<li><code>{{ rid }}</code></li>{% endfor %}</ul></details>{% endif %}
</div>{% else %}<p class="ok">No warnings.</p>{% endif %}

<p>How to read this report: docs/harness.md. Every count is a number of patients unless it says
otherwise. "No dose" means the engine withheld a start (contraindication, missing data, or a rule
that withholds); it is never a default dose.</p>

<h2>Safety checks</h2>
<p>Engine disagreements (durable-rules vs reference evaluator):
{% if r.disagreement_count is none %}<strong class="bad">not checked</strong> (run with --no-differential)
{% elif r.disagreement_count %}<strong class="bad">{{ r.disagreement_count }}</strong>
{% else %}<span class="ok">none</span> in {{ r.checks.differential }} patients{% endif %}.
Safety-invariant violations (single-answer invariants):
{% if r.invariant_violations is none %}<strong class="bad">not checked</strong> (run with --no-invariants)
{% elif r.invariant_violations %}<strong class="bad">{{ r.invariant_violations.values()|sum }}</strong>
{% else %}<span class="ok">none</span> in {{ r.checks.invariants }} patients{% endif %}.</p>
{% if r.invariant_violations %}<table><tr><th>invariant | drug</th><th>patients</th></tr>
{% for k, n in r.invariant_violations.items() %}<tr><td>{{ k }}</td><td class="n">{{ n }}</td></tr>{% endfor %}</table>
<details><summary>Examples</summary><table><tr><th>id</th><th>invariant</th><th>message</th><th>rules</th></tr>
{% for v in r.invariant_violation_examples[:200] %}<tr><td>{{ v.id }}</td><td>{{ v.invariant }}</td>
<td>{{ v.message }}</td>
<td>{{ v.rule_ids|join(', ') }}</td></tr>{% endfor %}</table></details>{% endif %}
{% if r.disagreements %}<table><tr><th>id</th><th>drug</th><th>only durable-rules</th><th>only reference</th></tr>
{% for d in r.disagreements[:200] %}<tr><td>{{ d.id }}</td><td>{{ d.drug }}</td>
<td>{{ d.only_durable|join(', ') }}</td>
<td>{{ d.only_reference|join(', ') }}</td></tr>{% endfor %}</table>{% endif %}

<h2>Findings by drug, category and severity</h2>
<img src="{{ images.findings }}" alt="findings heatmap">

<h2>Rule coverage</h2>
<img src="{{ images.coverage }}" alt="rule coverage">
{% for owner, rules in r.rules.by_drug.items() %}
<details><summary>{{ owner }}: {{ rules|selectattr('fires')|list|length }} of {{ rules|length }} rules fired
</summary>
<table><tr><th>rule</th><th>fired (patients)</th><th>where</th></tr>
{% for rule in rules|sort(attribute='fires', reverse=True) %}<tr{% if not rule.fires %} class="bad"{% endif %}>
<td><code>{{ rule.rule_id }}</code></td><td class="n">{{ rule.fires }}</td>
<td><code>{{ rule.file }}</code></td></tr>{% endfor %}
</table></details>{% endfor %}

<h2>Start doses by renal band and age</h2>
{% for drug, info in r.drugs.items() %}{% if info.orders.start %}
<h3>{{ drug }} ({{ info.orders.start }} starts, {{ info.orders.stop }} stops,
{{ info.contraindicated }} contraindicated)</h3>
<img src="{{ images['dose_' + drug] }}" alt="{{ drug }} start doses">
{% endif %}{% endfor %}

<h2>Missing data</h2>
<img src="{{ images.missing }}" alt="missing data">
<p>{{ r.missing_data_patient_count }} patient(s) had something the engine could not check
{% if r.missing_data_patient_count > r.missing_data_patients|length %}
(first {{ r.missing_data_patients|length }} listed in summary.json){% endif %}.</p>
<details><summary>Patients with missing data</summary><table><tr><th>id</th><th>drug</th><th>missing</th></tr>
{% for m in r.missing_data_patients[:300] %}<tr><td>{{ m.id }}</td><td>{{ m.drug }}</td>
<td>{{ m.missing|join(', ') }}</td></tr>{% endfor %}
</table></details>

<h2>Inputs not recognised</h2>
<table><tr><th>field | value</th><th>times</th></tr>
{% for k, n in r.unrecognized.items() %}<tr><td>{{ k }}</td><td class="n">{{ n }}</td></tr>{% endfor %}</table>
{% if r.input_error_examples or r.evaluation_error_examples %}<h2>Errors</h2><table><tr><th>id</th><th>error</th></tr>
{% for e in r.input_error_examples + r.evaluation_error_examples %}
<tr><td>{{ e.id }}</td><td>{{ e.error }}</td></tr>{% endfor %}
</table>{% endif %}
</body></html>
"""
)
