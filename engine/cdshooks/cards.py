"""Engine answers to CDS Hooks cards: one card per finding, plus the dose and what was not checked.

A card says exactly what ``/v1/evaluate`` says for the same patient: each finding keeps its
severity (as ``indicator``), its summary and detail, and its first citation (as ``source``); the
detail adds the rule id and the facts that made it fire, so a clinician can check the reasoning.
The starting dose is a suggestion to *update* the draft MedicationRequest in place (same id, whole
resource, new ``dosageInstruction``), with the dose spelled out in the label. Cards are ordered
critical, warning, info.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from engine.cdshooks.models import Action, Card, Coding, Source, Suggestion
from engine.cdshooks.plan import Evaluated
from engine.compiler.model import CompiledPack
from engine.fhir.profile import FhirProfile
from engine.fhir.values import UCUM, as_list, obj
from engine.runtime.outcome import DOSE_RANGE_RULE
from schemas.api import DoseSuggestion, Finding
from schemas.common import SEVERITY_RANK, Severity

TOPIC_SYSTEM = "urn:cdsrules:card-topic"  # codes: the finding categories, plus "dosing" and "not-checked"
OVERRIDE_SYSTEM = "urn:cdsrules:override-reason"
OVERRIDE_REASONS = [
    Coding(
        system=OVERRIDE_SYSTEM, code="benefit-outweighs-risk", display="Benefit outweighs the risk for this patient"
    ),
    Coding(system=OVERRIDE_SYSTEM, code="will-monitor", display="Aware; will monitor the patient"),
    Coding(system=OVERRIDE_SYSTEM, code="data-incorrect", display="Patient data shown is wrong or out of date"),
    Coding(system=OVERRIDE_SYSTEM, code="not-applicable", display="Does not apply to this patient"),
]
MISSING_WORDS = {
    "age": "age",
    "sex": "sex",
    "weight": "weight",
    "height": "height",
    "renal-function": "renal function",
    "hepatic-function": "hepatic function",
    "pregnancy-status": "pregnancy status",
    "breastfeeding-status": "breastfeeding status",
}
_MD_SPECIAL = "\\`*_[]<>|#"
# Line breaks become spaces: EHR text must not start a line of its own (a forged "Facts used"
# bullet). Bare URLs are broken up below ("https\://", "www\."), since GFM auto-links them.
_MD_BREAKS = {"\r": " ", "\n": " ", "\u2028": " ", "\u2029": " ", "\x0b": " ", "\x0c": " ", "\x85": " "}
_MD_CHARS = frozenset(_MD_SPECIAL) | frozenset(_MD_BREAKS)
_MD_ESCAPES = str.maketrans({**{c: "\\" + c for c in _MD_SPECIAL}, **_MD_BREAKS})


def md(value: object) -> str:
    """Data from the EHR, escaped so it cannot turn into Markdown links or formatting."""
    s = str(value)
    # ~50 calls per CDS Hooks call: most values have nothing to escape, and the set check finds
    # that without building a new string; where there is, one translate pass (no regex) does it.
    if not _MD_CHARS.isdisjoint(s):
        s = s.translate(_MD_ESCAPES)
    if "://" in s:
        s = s.replace("://", "\\://")
    if "www." in s.lower():
        s = re.sub(r"(?i)\b(www)\.", r"\1\\.", s)
    return s


def times_words(n: float) -> str:
    return {1: "once daily", 2: "twice daily", 3: "three times daily", 4: "four times daily"}.get(
        int(n) if float(n).is_integer() else -1, f"{n:g} times daily"
    )


def dose_words(drug: str, dose: DoseSuggestion) -> str:
    s = dose.start
    return f"{drug} {s.dose_mg:g} mg {times_words(s.times_per_day)} ({s.total_daily_mg:g} mg/day)"


def summary(drug: str, text: str) -> str:
    """The finding's summary, prefixed with the drug when it does not already name it; < 140 chars."""
    out = text if drug.lower() in text.lower() else f"{drug.capitalize()}: {text}"
    return out if len(out) <= 139 else out[:138].rstrip() + "…"


def _topic(code: str) -> Coding:
    return Coding(system=TOPIC_SYSTEM, code=code, display=code.replace("-", " ").capitalize())


def _source(finding_sources: list[Any], fallback: str, topic: str) -> Source:
    """The first citation a reader can open (label and URL of the same source), else the first one."""
    linked = [s for s in finding_sources if s.url and s.url.startswith(("http://", "https://"))]
    primary = linked[0] if linked else (finding_sources[0] if finding_sources else None)
    label = primary.label if primary is not None else fallback
    return Source(label=label[:200], url=linked[0].url if linked else None, topic=_topic(topic))


def _card(summary_text: str, indicator: Severity, detail: str, source: Source, suggestion: Suggestion | None) -> Card:
    return Card(
        uuid=str(uuid.uuid4()),
        summary=summary_text,
        detail=detail,
        indicator=indicator,  # checked by the model
        source=source,
        suggestions=[suggestion] if suggestion else None,
        selectionBehavior="at-most-one" if suggestion else None,
        overrideReasons=OVERRIDE_REASONS if indicator != "info" or suggestion else None,
    )


def _order_line(ev: Evaluated) -> str:
    o = ev.target.order
    where = f" ({md(o.ref)})" if o.ref else ""
    written = (
        f", written as {o.ordered.dose_mg:g} mg {times_words(o.ordered.times_per_day)}"
        if o.ordered and ev.target.purpose in ("sign", "review")
        else ""
    )
    role = {"select": "Selected order", "sign": "Order to sign", "review": "Active prescription"}
    if ev.target.purpose == "new-order":
        news = ", ".join(md(n.label) for n in ev.target.new_orders)
        return f"Active prescription: {md(o.label)}{where}; new order(s): {news}"
    return f"{role[ev.target.purpose]}: {md(o.label)}{where}{written}"


def _facts(ev: Evaluated, profile: FhirProfile, rule_id: str | None) -> str:
    lines = [f"- {_order_line(ev)}"]
    r = ev.response.renal
    value = f"{r.value_ml_min:g} mL/min" if r.value_ml_min is not None else "not available"
    lines.append(f"- Renal function used: {value} ({md(r.method)}); band {md(r.band)}")
    if rule_id:
        entry = next((t for t in ev.response.trace if t.rule_id == rule_id), None)
        shown = ", ".join(f"{md(k)} = {md(v)}" for k, v in entry.matched.items()) if entry else ""
        version = f" v{entry.version}" if entry else ""
        lines.append(f"- Rule `{rule_id}`{version}" + (f" matched: {shown}" if shown else ""))
    lines.extend(f"- {md(e)}" for e in profile.evidence)
    return "\n".join(lines)


def finding_card(ev: Evaluated, f: Finding, profile: FhirProfile, suggestion: Suggestion | None) -> Card:
    cites = "; ".join(md(s.label + (f", {s.section}" if s.section else "")) for s in f.sources)
    detail = f"{md(f.detail)}\n\n**Facts used**\n\n{_facts(ev, profile, f.rule_id)}\n\n**Sources:** {cites}"
    if suggestion is not None:
        detail += f"\n\n**Suggested:** {md(suggestion.label)}"
    source = _source(list(f.sources), "cdsrules rule pack", f.category)
    return _card(summary(ev.target.ingredient, f.summary), f.severity, detail, source, suggestion)


def _json_copy(value: Any) -> Any:
    """A deep copy of a parsed JSON document (dicts, lists and immutable scalars).

    ``copy.deepcopy`` does the same for a MedicationRequest at about three times the CPU: it keeps
    a memo for shared and cyclic objects, which JSON from a request cannot contain.
    """
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    return value


def dose_update(ev: Evaluated, dose: DoseSuggestion) -> Suggestion | None:
    """Update the draft order to the suggested start: same resource, new dosageInstruction."""
    order = ev.target.order
    if order.ref is None:
        return None
    s = dose.start
    resource = _json_copy(order.resource)
    old = obj(as_list(resource.get("dosageInstruction")))
    dosage: dict[str, Any] = {
        "text": f"{s.dose_mg:g} mg {times_words(s.times_per_day)}",
        "timing": {"repeat": {"frequency": s.times_per_day, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": s.dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}}],
    }
    if isinstance(old.get("route"), dict):
        dosage["route"] = old["route"]
    resource["dosageInstruction"] = [dosage]
    words = dose_words(ev.target.ingredient, dose)
    action = Action(type="update", description=f"Change {order.ref} to {words}", resource=resource)
    return Suggestion(label=f"Use {words}", uuid=str(uuid.uuid4()), isRecommended=True, actions=[action])


def dose_card(ev: Evaluated, dose: DoseSuggestion, profile: FhirProfile, pack: CompiledPack, why: str) -> Card:
    drug = ev.target.ingredient
    o = ev.target.order
    same = o.ordered is not None and (o.ordered.dose_mg, o.ordered.times_per_day) == (
        dose.start.dose_mg,
        dose.start.times_per_day,
    )
    suggestion = None if same else dose_update(ev, dose)
    monitoring = "\n".join(f"- {md(m.prompt)} ({md(m.when)})" for m in ev.response.monitoring) or "- none"
    detail = (
        f"{why}\n\n**Start:** {md(dose_words(drug, dose))}; maximum {dose.max_daily_mg:g} mg/day for this patient."
        f"\n\n**Titration:** {md(dose.titration or 'not specified')}\n\n**Rules:** "
        + ", ".join(f"`{r}`" for r in dose.rule_ids)
        + f"\n\n**Monitor**\n\n{monitoring}\n\n**Facts used**\n\n{_facts(ev, profile, None)}"
    )
    rules = [pack.rules[r] for r in dose.rule_ids if r in pack.rules]
    sources = [s for r in rules for s in r.rule.sources]
    text = f"{dose_words(drug, dose).capitalize()} to start; max {dose.max_daily_mg:g} mg/day for this patient"
    return _card(summary(drug, text), "info", detail, _source(sources, "cdsrules rule pack", "dosing"), suggestion)


def gaps_card(gaps: list[str], notes: list[str], pack_version: str) -> Card:
    labels = [g.split(":")[0].split(" (")[0] for g in gaps]
    short = ", ".join(dict.fromkeys(labels))  # "renal function (eGFR): …" and "renal function (baclofen)" once
    detail = "These checks were not done, so their absence from the cards is not reassurance:\n\n"
    detail += "\n".join(f"- {md(g)}" for g in gaps)
    if notes:
        detail += "\n\n**Data notes**\n\n" + "\n".join(f"- {md(n)}" for n in notes)
    source = Source(label=f"cdsrules rule pack {pack_version}", topic=_topic("not-checked"))
    return _card(summary("", f"Not checked: {short}"), "info", detail, source, None)


def build_cards(
    evaluated: list[Evaluated],
    profile: FhirProfile,
    pack: CompiledPack,
    unavailable: list[str],
    notes: list[str],
    unchecked_orders: list[str],
) -> list[Card]:
    """All cards of one call; data gaps are reported when something was evaluated or an order was not."""
    cards: list[Card] = []
    gaps = list(unchecked_orders) + list(unavailable)
    for ev in evaluated:
        t, resp = ev.target, ev.response
        dose_range = any(f.rule_id == DOSE_RANGE_RULE for f in resp.findings)
        for f in resp.findings:
            if ev.new_rule_ids is not None and f.rule_id not in ev.new_rule_ids:
                continue
            draft = t.purpose in ("select", "sign")  # active orders under review are not rewritten by a card
            suggestion = dose_update(ev, resp.dose) if draft and f.rule_id == DOSE_RANGE_RULE and resp.dose else None
            cards.append(finding_card(ev, f, profile, suggestion))
        if t.purpose == "new-order":
            continue
        gaps.extend(f"{MISSING_WORDS.get(m, m)} (needed for {t.ingredient})" for m in resp.missing_data)
        if resp.dose is not None and t.purpose == "select":
            cards.append(dose_card(ev, resp.dose, profile, pack, "Suggested starting dose for the selected order."))
        elif resp.dose is not None and t.purpose == "sign" and t.order.ordered is None:
            why = f"The written dose could not be read ({md(t.order.dose_note)}), so it was not checked."
            cards.append(dose_card(ev, resp.dose, profile, pack, why))
        if t.purpose in ("sign", "review") and t.order.ordered is None and not dose_range:
            gaps.append(f"dose range ({t.ingredient}: {t.order.dose_note})")
    if gaps and (evaluated or unchecked_orders):
        cards.append(gaps_card(sorted(set(gaps), key=gaps.index), notes, pack.version))
    cards.sort(key=lambda c: -SEVERITY_RANK[c.indicator])
    return cards
