"""Turn cohort statistics into the JSON summary that sits beside the HTML report.

``results`` depends only on the patients and the rule pack (the Dask test compares it with the
in-process run); ``meta`` holds how the run was made (engine, workers, seconds, patients/s).
Rules that never fired are listed under ``warnings``: across 10,000 patients a rule that never
fires is either unreachable, or about a population the cohort does not contain, and a reviewer
must know which.

``results.checks`` says how many patients each check ran on, counted while they ran (not taken
from the command line). A check that ran on no patient reports its result as ``null``, never as
zero, and adds a warning, so an evaluation-only report cannot be read as a clean checked one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from engine.compiler.model import SHARED, CompiledPack
from engine.harness.invariants import SINGLE_ANSWER
from schemas.common import CATEGORIES

SEVERITIES = ("critical", "warning", "info")
MAX_LISTED = 500  # ids listed per table in the summary; counts are always complete


def _split(counts: dict[str, int]) -> list[tuple[list[str], int]]:
    return [(key.split("|"), n) for key, n in counts.items()]


def build_summary(state: dict[str, Any], pack: CompiledPack, meta: dict[str, Any]) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = state["counts"]
    lists: dict[str, list[dict[str, Any]]] = state["lists"]
    totals = counts.get("totals", {})
    evaluated = totals.get("evaluated", 0)
    fires = counts.get("rule_fires", {})

    drugs: dict[str, dict[str, Any]] = {}
    for drug in sorted(pack.drugs):
        drugs[drug] = {
            "orders": {"start": 0, "stop": 0},
            "findings": {c: {s: 0 for s in SEVERITIES} for c in CATEGORIES},
            "contraindicated": counts.get("contraindicated", {}).get(drug, 0),
            "missing_data": {},
            "start_doses": [],
            "start_doses_by_age": [],
        }
    for (drug, action), n in _split(counts.get("orders", {})):
        drugs[drug]["orders"][action] = n
    for (drug, category, severity), n in _split(counts.get("findings", {})):
        drugs[drug]["findings"][category][severity] = n
    for (drug, code), n in _split(counts.get("missing_data", {})):
        drugs[drug]["missing_data"][code] = n
    for (drug, renal, age, total), n in _split(counts.get("start_doses", {})):
        drugs[drug]["start_doses"].append({"renal_band": renal, "age_group": age, "total_daily_mg": total, "n": n})
    for (drug, band, total), n in _split(counts.get("start_doses_by_age", {})):
        drugs[drug]["start_doses_by_age"].append({"age_band": band, "total_daily_mg": total, "n": n})

    by_drug_rules: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rid in sorted(pack.rules):
        rule = pack.rules[rid]
        owner = "shared" if rule.drug == SHARED else rule.drug
        by_drug_rules[owner].append({"rule_id": rid, "fires": fires.get(rid, 0), "file": f"{rule.file}:{rule.line}"})
    never = [r["rule_id"] for rules in by_drug_rules.values() for r in rules if r["fires"] == 0]
    warnings: list[str] = []
    if never:
        warnings.append(f"{len(never)} of {len(pack.rules)} rules never fired across {evaluated} patients")
    unordered = [d for d, info in drugs.items() if not any(info["orders"].values())]
    if unordered:
        warnings.append(f"no patient ordered {', '.join(unordered)}: their rules could not fire")

    checked = counts.get("checks", {})
    differential, invariants = checked.get("differential", 0), checked.get("invariants", 0)
    disagreements = lists.get("disagreements", [])
    violations = counts.get("violations", {})
    input_errors = lists.get("input_errors", [])
    eval_errors = lists.get("evaluation_errors", [])
    results = {
        "patients": totals.get("lines", 0),
        "evaluated": evaluated,
        "input_errors": len(input_errors),
        "evaluation_errors": len(eval_errors),
        "checks": {
            "differential": differential,
            "invariants": invariants,
            "invariant_names": list(SINGLE_ANSWER) if invariants else [],
        },
        "drugs": drugs,
        "rules": {
            "total": len(pack.rules),
            "fired": len(pack.rules) - len(never),
            "never_fired": never,
            "by_drug": dict(sorted(by_drug_rules.items())),
        },
        "missing_data_patients": lists.get("missing_patients", [])[:MAX_LISTED],
        "missing_data_patient_count": len(lists.get("missing_patients", [])),
        "unrecognized": dict(sorted(counts.get("unrecognized", {}).items(), key=lambda kv: (-kv[1], kv[0]))[:100]),
        "disagreements": disagreements[:MAX_LISTED],
        "disagreement_count": len(disagreements) if differential else None,
        "invariant_violations": violations if invariants else None,
        "invariant_violation_examples": lists.get("violation_examples", [])[:MAX_LISTED],
        "input_error_examples": input_errors[:MAX_LISTED],
        "evaluation_error_examples": eval_errors[:MAX_LISTED],
    }
    if evaluated and not differential:
        warnings.append("differential check not run: no answer was compared with the reference evaluator")
    elif differential < evaluated:
        warnings.append(f"differential check ran on {differential} of {evaluated} evaluated patients")
    if evaluated and not invariants:
        warnings.append("safety invariants not run: no answer was checked against them")
    elif invariants < evaluated:
        warnings.append(f"safety invariants ran on {invariants} of {evaluated} evaluated patients")
    if disagreements:
        warnings.append(f"durable-rules and the reference evaluator disagree on {len(disagreements)} patient(s)")
    if violations:
        warnings.append(f"{sum(violations.values())} safety-invariant violation(s)")
    if input_errors or eval_errors:
        warnings.append(f"{len(input_errors)} invalid line(s), {len(eval_errors)} evaluation error(s)")
    ruleset = {"version": pack.version, "digest": pack.digest}
    return {"meta": {**meta, "ruleset": ruleset}, "results": results, "warnings": warnings}


def needs_attention(summary: dict[str, Any]) -> bool:
    """True when something other than never-fired rules needs a human (the CLI's exit code)."""
    r = summary["results"]
    return bool(r["disagreement_count"] or r["invariant_violations"] or r["input_errors"] or r["evaluation_errors"])
