"""Say which checks were left undone because an input item was not recognised.

A medication the terminology cannot place is not evidence of no interaction; a problem-list entry
it cannot read is not evidence of no contraindication. Listing such items in ``unrecognized`` is
not enough, because a reader of the advice looks at the findings: so when this drug has rules
that read that kind of data, the answer carries a finding that names the check and the items.

Which rules read which kind is worked out once per drug from the compiled rules, following
derived facts (a rule on ``renal_band`` reads the problem list through the derivation that turns
"ESRD" into the severe band). The finding is a warning when any of those rules can contraindicate
or raise a critical finding, else info.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.compiler.language import size_field
from engine.compiler.model import CompiledRule, DrugRules
from schemas.api import Finding, SourceOut, Unrecognized
from schemas.common import Severity

# input kind -> the fact fields built from it (engine.runtime.facts)
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "co_medications": ("comed_classes", "comed_ingredients", "ordered_drug_on_med_list"),
    "conditions": ("conditions",),
    "allergies": ("allergy_classes", "allergy_ingredients"),
}
_PREFIXES = {"co_medications": ("n_comed_",)}  # n_comed_<class> counts and the set sizes
_WHAT = {
    "co_medications": ("interactions", "medication", "medications"),
    "conditions": ("disease and organ-function checks", "problem-list entry", "problem-list entries"),
    "allergies": ("allergy and cross-sensitivity checks", "allergy", "allergies"),
}
RULE_PREFIX = "engine.not-checked."
_SOURCE = SourceOut(label="cdsrules terminology: what is recognised (docs/terminology.md)", section="Nothing silent")
_SHOWN = 3  # items named in the summary; the detail names them all


@dataclass(frozen=True)
class Dependence:
    severity: Severity
    rule_ids: tuple[str, ...]


def _reads(rule: CompiledRule, kind: str, derived_from: dict[str, set[str]]) -> bool:
    fields = {*KIND_FIELDS[kind], *(size_field(f) for f in KIND_FIELDS[kind])}
    prefixes = _PREFIXES.get(kind, ())
    return any(
        f in fields or f.startswith(prefixes) or kind in derived_from.get(f, ()) for f in rule.referenced_fields()
    )


def dependences(drug: DrugRules) -> dict[str, Dependence]:
    """For each input kind, the rules of this drug that read it (directly or through a derived fact)."""
    derived_from: dict[str, set[str]] = {}
    derivations = [r for r in drug.rules if r.is_derivation]
    for _ in range(len(derivations) + 1):  # derived facts may read other derived facts: iterate to a fixpoint
        changed = False
        for r in derivations:
            assert r.then.derive is not None
            kinds = {k for k in KIND_FIELDS if _reads(r, k, derived_from)}
            for name in r.then.derive:
                have = derived_from.setdefault(name, set())
                if not kinds <= have:
                    have |= kinds
                    changed = True
        if not changed:
            break
    out: dict[str, Dependence] = {}
    for kind in KIND_FIELDS:
        readers = [r for r in drug.rules if not r.is_derivation and _reads(r, kind, derived_from)]
        if not readers:
            continue
        serious = any(
            r.then.contraindicated or (r.then.finding is not None and r.then.finding.severity == "critical")
            for r in readers
        )
        out[kind] = Dependence("warning" if serious else "info", tuple(sorted(r.id for r in readers)))
    return out


def not_checked(unrecognized: Sequence[Unrecognized], deps: dict[str, Dependence]) -> list[Finding]:
    """One finding per kind with items not (fully) recognised, when this drug's rules read that kind."""
    findings: list[Finding] = []
    for kind, dep in deps.items():
        # sorted, so the same list in another order gives the same answer
        items = sorted((u for u in unrecognized if u.field == kind and u.status != "not-used"), key=_short)
        if not items:
            continue
        check, one, many = _WHAT[kind]
        noun = one if len(items) == 1 else many
        named = ", ".join(_short(u) for u in items[:_SHOWN]) + (", ..." if len(items) > _SHOWN else "")
        summary = f"Not checked: {check} for {len(items)} {noun} not recognised ({named})"
        if len(summary) > 139:
            summary = f"Not checked: {check} for {len(items)} {noun} not recognised"
        detail = (
            f"These entries could not be matched to the terminology, so the {check} that depend on them "
            "were not done; the absence of a finding about them is not reassurance.\n"
            + "\n".join(f"- {_long(u)}" for u in items)
            + "\nRules that would read them: "
            + ", ".join(dep.rule_ids)
        )
        findings.append(
            Finding(
                rule_id=RULE_PREFIX + kind,
                category="not-checked",
                severity=dep.severity,
                summary=summary,
                detail=detail,
                sources=[_SOURCE],
            )
        )
    return findings


def _short(u: Unrecognized) -> str:
    value = u.value if len(u.value) <= 40 else u.value[:37] + "..."
    return f"{value}, partly" if u.status == "partial" else value


def _long(u: Unrecognized) -> str:
    return f"{u.value} ({u.detail})" if u.detail else u.value
