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

from engine.cdshooks.dispense import recompute
from engine.cdshooks.models import Action, Card, Coding, Source, Suggestion
from engine.cdshooks.plan import Evaluated
from engine.compiler.model import CompiledPack
from engine.fhir.medications import MedOrder
from engine.fhir.profile import FhirProfile
from engine.fhir.values import UCUM, as_list, obj
from engine.runtime.frequency import frequency_words
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
# unrecognised entries that leave a check incomplete; conditions are left out, as most problem-list
# entries have nothing to do with these drugs and would bury the rest
_FIELD_WORDS = {"co_medications": "medications", "allergies": "drug allergies"}
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


def dose_words(drug: str, dose: DoseSuggestion) -> str:
    s = dose.start
    return f"{drug} {s.dose_mg:g} mg {frequency_words(s.times_per_day)} ({s.total_daily_mg:g} mg/day)"


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
        f", written as {o.ordered.dose_mg:g} mg {frequency_words(o.ordered.times_per_day, o.ordered.every_hours)}"
        if o.ordered and ev.target.purpose in ("sign", "review")
        else ""
    )
    role = {"select": "Selected order", "sign": "Order to sign", "review": "Active prescription"}
    if ev.target.purpose == "new-order":
        news = ", ".join(md(n.label) for n in ev.target.new_orders)
        return f"Active prescription: {md(o.label)}{where}; new order(s): {news}"
    return f"{role[ev.target.purpose]}: {md(o.label)}{where}{written}"


# The patient facts a finding of each category rests on: shown on its own card even when the full
# list is on the dosing card, so every card names the data (and the resource) that triggered it.
_RELEVANT = {
    "renal": ("egfr", "creatinine", "weight", "height", "born", "stale"),
    "geriatric": ("born", "egfr", "creatinine"),
    "pediatric": ("born", "weight", "height"),
    "pregnancy": ("pregnan", "sex"),
    "lactation": ("breastfeed", "lactat", "sex"),
    "hepatic": ("hepatic", "liver", "bilirubin"),
}


def _facts(ev: Evaluated, profile: FhirProfile, rule_id: str | None, evidence: bool = True, category: str = "") -> str:
    lines = [f"- {_order_line(ev)}"]
    r = ev.response.renal
    value = f"{r.value_ml_min:g} mL/min" if r.value_ml_min is not None else "not available"
    lines.append(f"- Renal function used: {value} ({md(r.method)}); band {md(r.band)}")
    if rule_id:
        entry = next((t for t in ev.response.trace if t.rule_id == rule_id), None)
        shown = ", ".join(f"{md(k)} = {md(v)}" for k, v in entry.matched.items()) if entry else ""
        version = f" v{entry.version}" if entry else ""
        lines.append(f"- Rule `{rule_id}`{version}" + (f" matched: {shown}" if shown else ""))
    if evidence:
        lines.extend(f"- {md(e)}" for e in profile.evidence)
    else:  # the full list is on the dosing card of the same order; here only what this finding rests on
        words = _RELEVANT.get(category, ())
        lines.extend(f"- {md(e)}" for e in profile.evidence if any(w in e.lower() for w in words))
        lines.append("- Other patient data: on the dosing card")
    return "\n".join(lines)


def finding_card(
    ev: Evaluated, f: Finding, profile: FhirProfile, suggestion: Suggestion | None, evidence: bool = True
) -> Card:
    cites = "; ".join(md(s.label + (f", {s.section}" if s.section else "")) for s in f.sources)
    facts = _facts(ev, profile, f.rule_id, evidence, f.category)
    detail = f"{md(f.detail)}\n\n**Facts used**\n\n{facts}\n\n**Sources:** {cites}"
    if suggestion is not None:
        detail += f"\n\n**Suggested:** {md(suggestion.label)}"
    source = _source(list(f.sources), "cdsrules rule pack", f.category)
    card = _card(summary(ev.target.ingredient, f.summary), f.severity, detail, source, suggestion)
    card._rule = (f.rule_id, _version(ev, f.rule_id)) if f.rule_id else None
    return card


def _version(ev: Evaluated, rule_id: str) -> str:
    return next((t.version for t in ev.response.trace if t.rule_id == rule_id), "")


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
    """Update the draft order to the suggested start, so that accepting it needs no further edit.

    Same resource and id; the first dosage line keeps everything but its dose, timing and text
    (``asNeeded*``, ``additionalInstruction``, ``patientInstruction``, ``route``, ``sequence``), later
    lines are kept as written, and the dispense quantity, computed for the old dose, is recomputed for
    the new one (``engine.cdshooks.dispense``) or, where that is not certain, removed with the supply
    duration so the pharmacy system recomputes them rather than dispensing the old amount.
    """
    order = ev.target.order
    if order.ref is None:
        return None
    s = dose.start
    resource = _json_copy(order.resource)
    lines = [obj(d) for d in as_list(resource.get("dosageInstruction"))]
    first = dict(lines[0]) if lines else {}
    for key in ("doseAndRate", "doseQuantity", "maxDosePerPeriod", "maxDosePerAdministration"):
        first.pop(key, None)
    timing = obj(first.get("timing"))
    first["timing"] = {k: v for k, v in timing.items() if k == "event"} | {
        "repeat": {"frequency": s.times_per_day, "period": 1, "periodUnit": "d"}
    }
    first["text"] = f"{s.dose_mg:g} mg {frequency_words(s.times_per_day)}" + (" as needed" if _as_needed(first) else "")
    first["doseAndRate"] = [{"doseQuantity": {"value": s.dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}}]
    resource["dosageInstruction"] = [first, *lines[1:]]
    # R4 requires intent (1..1); the sandbox's drafts omit it, and an update the EHR cannot store
    # is not a suggestion it can accept. A draft being ordered is an "order".
    resource.setdefault("intent", "order")
    dispense = obj(resource.get("dispenseRequest"))
    supply_note = None
    if dispense.get("quantity") is not None or dispense.get("expectedSupplyDuration") is not None:
        quantity, supply_note = recompute(order, s, dispense)
        kept = {k: v for k, v in dispense.items() if k not in ("quantity", "expectedSupplyDuration")}
        if quantity is not None:
            kept["quantity"] = quantity
            if dispense.get("expectedSupplyDuration") is not None:
                kept["expectedSupplyDuration"] = dispense["expectedSupplyDuration"]
        else:
            supply_note = f"dispense quantity removed (it was for the old dose; not recomputed: {supply_note})"
        if kept:
            resource["dispenseRequest"] = kept
        else:
            resource.pop("dispenseRequest")
    words = dose_words(ev.target.ingredient, dose)
    description = f"Change {order.ref} to {words}"
    strength = order.strength
    if strength is not None and not strength.per_ml and (s.dose_mg / strength.mg * 2) % 1:
        description += (
            f"; {s.dose_mg:g} mg is not a whole or half {strength.mg:g} mg tablet: choose a lower strength or a liquid"
        )
    if supply_note:
        description += f"; {supply_note}"
    action = Action(type="update", description=description, resource=resource)
    return Suggestion(label=f"Use {words}", uuid=str(uuid.uuid4()), isRecommended=True, actions=[action])


def _as_needed(dosage: dict[str, Any]) -> bool:
    return bool(dosage.get("asNeededBoolean")) or dosage.get("asNeededCodeableConcept") is not None


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
    card = _card(summary(drug, text), "info", detail, _source(sources, "cdsrules rule pack", "dosing"), suggestion)
    card._rule = (dose.rule_ids[0], _version(ev, dose.rule_ids[0])) if dose.rule_ids else None
    return card


def gaps_card(gaps: list[str], notes: list[str], pack_version: str) -> Card:
    """What was not checked, and every note on the data that changes how complete the answer is."""
    labels = [g.split(":")[0].split(" (")[0] for g in gaps]
    short = ", ".join(dict.fromkeys(labels))  # "renal function (eGFR): …" and "renal function (baclofen)" once
    detail = ""
    if gaps:
        detail = "These checks were not done, so their absence from the cards is not reassurance:\n\n"
        detail += "\n".join(f"- {md(g)}" for g in gaps)
    if notes:
        detail += ("\n\n" if detail else "") + "**Data notes**\n\n" + "\n".join(f"- {md(n)}" for n in notes)
    source = Source(label=f"cdsrules rule pack {pack_version}", topic=_topic("not-checked"))
    if gaps:
        text = f"Not checked: {short}"
    else:
        text = f"Note: {notes[0]}" if len(notes) == 1 else f"{len(notes)} notes on the data read (see detail)"
    return _card(summary("", text), "info", detail, source, None)


def intolerance_card(ev: Evaluated, words: str, pack_version: str) -> Card:
    drug = ev.target.ingredient
    detail = (
        f"A {md(drug)} intolerance is recorded: {md(words)}. It is not recorded as an allergy or a severe "
        "reaction, so it is a caution, not a contraindication: discuss it with the patient and watch for "
        "the same reaction."
    )
    source = Source(label=f"cdsrules rule pack {pack_version}", topic=_topic("allergy"))
    text = f"recorded intolerance ({words.split(';')[0]}) - caution"
    return _card(summary(drug, text), "warning", detail, source, None)


def possible_pregnancy_card(conditions: list[str], drugs: list[str], pack_version: str) -> Card:
    """An undated pregnancy on the problem list: pregnancy may be current and must be confirmed.

    Such an entry may be a current pregnancy or one that ended long ago (problem lists keep them
    active), so it is neither taken as pregnant, which would bring drug-specific pregnancy advice,
    nor ignored: the prescriber is asked to confirm it first.
    """
    named = "\n".join(f"- {md(c)}" for c in conditions)
    for_drugs = f" {md(', '.join(drugs))}" if drugs else ""
    detail = (
        f"The problem list has an active pregnancy with no onset or recorded date:\n\n{named}\n\n"
        f"Pregnancy could be current and must be confirmed before prescribing{for_drugs}. These cards "
        "do not treat the patient as pregnant: the drug-specific pregnancy advice is given once pregnancy "
        "is confirmed (a pregnancy status observation, LOINC 82810-3, or a dated pregnancy Condition). "
        "If the pregnancy has ended, update the problem list."
    )
    source = Source(label=f"cdsrules rule pack {pack_version}", topic=_topic("pregnancy"))
    text = "Possible pregnancy (undated problem-list entry): confirm before prescribing"
    return _card(text, "warning", detail, source, None)


def route_card(order: MedOrder, ingredient: str, pack_version: str) -> Card:
    """The one answer for a covered drug given by another route: no oral dose, no suggestion."""
    route = order.route or "not oral"
    detail = (
        f"{md(order.label)}{f' ({md(order.ref)})' if order.ref else ''} is given by the {md(route)} route. "
        f"These rules cover oral {md(ingredient)} only, so no dose, renal or interaction advice was given "
        "for this order; check it against the product's own labelling."
    )
    source = Source(label=f"cdsrules rule pack {pack_version}", topic=_topic("not-checked"))
    return _card(summary(ingredient, f"not covered by these rules: route {route}"), "info", detail, source, None)


def build_cards(
    evaluated: list[Evaluated],
    profile: FhirProfile,
    pack: CompiledPack,
    unavailable: list[str],
    notes: list[str],
    unchecked_orders: list[str],
    other_route: list[tuple[MedOrder, str]] | None = None,
) -> list[Card]:
    """All cards of one call; data gaps are reported when something was evaluated or an order was not."""
    cards: list[Card] = [route_card(o, ing, pack.version) for o, ing in other_route or []]
    gaps = list(unchecked_orders) + list(unavailable)
    for ev in evaluated:
        t, resp = ev.target, ev.response
        dose_range = any(f.rule_id == DOSE_RANGE_RULE for f in resp.findings)
        has_dose_card = resp.dose is not None and (
            t.purpose == "select" or (t.purpose == "sign" and t.order.ordered is None)
        )
        for f in resp.findings:
            if ev.new_rule_ids is not None and f.rule_id not in ev.new_rule_ids:
                continue
            if t.purpose == "review" and f.rule_id == DOSE_RANGE_RULE and f.severity == "info":
                continue  # a maintenance dose above the start is expected; re-flagging it at every chart open is noise
            draft = t.purpose in ("select", "sign")  # active orders under review are not rewritten by a card
            suggestion = dose_update(ev, resp.dose) if draft and f.rule_id == DOSE_RANGE_RULE and resp.dose else None
            cards.append(finding_card(ev, f, profile, suggestion, evidence=not has_dose_card))
        if t.purpose == "new-order":
            continue
        for ref, words in profile.intolerances:
            if t.ingredient in pack.terminology.resolve_drug(ref):
                cards.append(intolerance_card(ev, words, pack.version))
        gaps.extend(f"{MISSING_WORDS.get(m, m)} (needed for {t.ingredient})" for m in resp.missing_data)
        gaps.extend(
            f"{_FIELD_WORDS[u.field]} not recognised ({u.value})" for u in resp.unrecognized if u.field in _FIELD_WORDS
        )
        if resp.dose is not None and t.purpose == "select":
            cards.append(dose_card(ev, resp.dose, profile, pack, "Suggested starting dose for the selected order."))
        elif resp.dose is not None and t.purpose == "sign" and t.order.ordered is None:
            why = f"The written dose could not be read ({md(t.order.dose_note)}), so it was not checked."
            cards.append(dose_card(ev, resp.dose, profile, pack, why))
        if t.purpose in ("sign", "review") and t.order.ordered is None and not dose_range:
            gaps.append(f"dose range ({t.ingredient}: {t.order.dose_note})")
    drugs = list(dict.fromkeys(ev.target.ingredient for ev in evaluated if ev.target.purpose != "new-order"))
    if profile.possible_pregnancy and (drugs or unchecked_orders or other_route):
        cards.append(possible_pregnancy_card(profile.possible_pregnancy, drugs, pack.version))
    if (gaps or notes) and (evaluated or unchecked_orders or notes):
        cards.append(gaps_card(sorted(set(gaps), key=gaps.index), notes, pack.version))
    cards.sort(key=lambda c: -SEVERITY_RANK[c.indicator])
    return cards
