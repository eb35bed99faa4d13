"""Check one golden case (the form of tests/data/worked-examples.json) against an engine answer."""

from __future__ import annotations

from typing import Any

from schemas.api import EvaluateResponse
from schemas.common import SEVERITY_RANK


def golden_failures(case: dict[str, Any], resp: EvaluateResponse) -> list[str]:
    exp = case["expect"]
    fails: list[str] = []
    if resp.contraindicated != exp["contraindicated"]:
        fails.append(f"contraindicated {resp.contraindicated}, expected {exp['contraindicated']}")
    if exp["contraindicated"] and resp.dose is not None:
        fails.append("a contraindicated drug got a dose")
    total = resp.dose.start.total_daily_mg if resp.dose else None
    mx = resp.dose.max_daily_mg if resp.dose else None
    if exp.get("max_start_total_daily_mg") is not None and (total is None or total > exp["max_start_total_daily_mg"]):
        fails.append(f"start {total} mg/day, expected <= {exp['max_start_total_daily_mg']}")
    if exp.get("min_start_total_daily_mg") is not None and (total is None or total < exp["min_start_total_daily_mg"]):
        fails.append(f"start {total} mg/day, expected >= {exp['min_start_total_daily_mg']}")
    if exp.get("max_daily_mg_at_most") is not None and (mx is None or mx > exp["max_daily_mg_at_most"]):
        fails.append(f"max {mx} mg/day, expected <= {exp['max_daily_mg_at_most']}")
    for flag in exp.get("must_flag", []):
        if not any(
            f.category == flag["category"] and SEVERITY_RANK[f.severity] >= SEVERITY_RANK[flag["min_severity"]]
            for f in resp.findings
        ):
            fails.append(f"missing {flag['category']} finding >= {flag['min_severity']}")
    codes = {m.code for m in resp.monitoring}
    for code in exp.get("must_monitor", []):
        if code not in codes:
            fails.append(f"missing monitoring {code} (got {sorted(codes)})")
    for cat in exp.get("must_not_flag", []):
        hits = [f.rule_id for f in resp.findings if f.category == cat]
        if hits:
            fails.append(f"unexpected {cat} finding from {hits}")
    fails.extend(_extra_failures(exp, resp))
    for f in resp.findings:
        if f.severity == "critical" and not f.sources:
            fails.append(f"critical finding {f.rule_id} has no source")
    return fails


def _extra_failures(exp: dict[str, Any], resp: EvaluateResponse) -> list[str]:
    """Optional checks: rules that must fire, no dose, no monitoring plan, words a text must carry."""
    fails: list[str] = []
    fired = {t.rule_id for t in resp.trace}
    for rule_id in exp.get("fires", []):
        if rule_id not in fired:
            fails.append(f"rule {rule_id} did not fire")
    if exp.get("no_dose") and resp.dose is not None:
        fails.append(f"a dose was suggested ({resp.dose.start.total_daily_mg} mg/day), expected none")
    if exp.get("no_monitoring") and resp.monitoring:
        fails.append(f"monitoring listed without a dose: {[m.code for m in resp.monitoring]}")
    if exp.get("titration_contains"):
        text = resp.dose.titration if resp.dose and resp.dose.titration else ""
        if exp["titration_contains"].lower() not in text.lower():
            fails.append(f"titration {text!r} lacks {exp['titration_contains']!r}")
    for want in exp.get("summary_contains", []):
        hits = [f for f in resp.findings if f.rule_id == want["rule_id"]]
        if not any(want["text"].lower() in f.summary.lower() for f in hits):
            fails.append(
                f"no {want['rule_id']} finding whose summary has {want['text']!r} (got {[f.summary for f in hits]})"
            )
    if exp.get("renal_band") and resp.renal.band != exp["renal_band"]:
        fails.append(f"renal band {resp.renal.band}, expected {exp['renal_band']}")
    if exp.get("renal_method_contains") and exp["renal_method_contains"] not in resp.renal.method:
        fails.append(f"renal method {resp.renal.method!r} lacks {exp['renal_method_contains']!r}")
    return fails
