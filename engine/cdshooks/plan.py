"""Which orders each hook evaluates, and with which co-medications: the hook semantics in one place.

- order-select: the *selected* draft orders of a drug the pack covers are evaluated as new starts;
  the other drafts of the session count as co-medications (a second relaxant is duplicate therapy).
- order-sign: every draft order of a covered drug is evaluated, with the dose the prescriber wrote,
  against this patient's maximum; the other drafts are co-medications.
- any hook: an order of a covered drug by another route than oral (intrathecal baclofen, a
  transdermal patch) is not evaluated at all; it gets one "not covered by these rules" card, since
  the pack's doses and suggestions are oral ones.
- patient-view: each active prescription of a covered drug is reviewed as if started today, with
  its current dose and the *other* active medications (never the drug's own order).

When a new order is not itself a relaxant (ciprofloxacin for a patient on tizanidine) the active
relaxants are evaluated twice, without and with the new orders; only the findings the new orders
add are reported, so the interaction shows up at ordering time, not only on the next chart open.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from engine.fhir.medications import MedOrder
from engine.fhir.profile import MAX_MEDICATIONS, FhirProfile
from engine.runtime.engine import Engine
from schemas.api import DrugOrder, DrugRef, EvaluateRequest, EvaluateResponse, OrderedDose

Purpose = Literal["select", "sign", "review", "new-order"]


@dataclass
class Target:
    order: MedOrder
    ingredient: str
    purpose: Purpose
    request: EvaluateRequest
    baseline: EvaluateRequest | None = None  # new-order checks: the same patient without the new orders
    new_orders: list[MedOrder] = field(default_factory=list)


@dataclass
class Evaluated:
    target: Target
    response: EvaluateResponse
    new_rule_ids: frozenset[str] | None = None  # new-order checks: findings the new orders added


@dataclass
class Plan:
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unidentified: list[str] = field(default_factory=list)  # orders whose drug nothing names
    other_route: list[tuple[MedOrder, str]] = field(default_factory=list)  # covered drug, non-oral: not evaluated


def ingredient(order: MedOrder, engine: Engine, notes: list[str]) -> str | None:
    """The covered ingredient an order is for, or None (not covered, unidentified, combination)."""
    if order.drug is None:
        return None
    found = engine.pack.terminology.resolve_drug(order.drug)
    covered = found & engine.pack.drugs.keys()
    if len(found) == 1 and covered:
        return next(iter(covered))
    if covered:
        notes.append(f"{order.label}: combination product ({', '.join(sorted(found))}) not checked")
    return None


def _request(profile: FhirProfile, ing: str, comeds: list[MedOrder], dose: OrderedDose | None) -> EvaluateRequest:
    refs: list[DrugRef] = [r for m in comeds for r in m.refs()][:MAX_MEDICATIONS]
    # an intolerance is a caution card (cards.intolerance_card), not the allergy contraindication
    caution = [r for r, _ in profile.intolerances]
    allergies = [a for a in profile.patient.allergies if a not in caution]
    patient = profile.patient.model_copy(update={"co_medications": refs, "allergies": allergies})
    return EvaluateRequest(patient=patient, drug=DrugOrder(name=ing, action="start", ordered_dose=dose))


def _others(pool: list[MedOrder], order: MedOrder) -> list[MedOrder]:
    """Every order in ``pool`` except ``order`` itself (same object, or same resource id)."""
    return [m for m in pool if m is not order and (order.ref is None or m.ref != order.ref)]


def _selected(drafts: list[MedOrder], selections: list[str], notes: list[str]) -> list[MedOrder]:
    chosen: list[MedOrder] = []
    for sel in selections:
        rtype, _, rid = sel.rpartition("/")
        hit = next((d for d in drafts if d.ref == sel or (d.ref and rid and d.ref == f"MedicationRequest/{rid}")), None)
        if hit is not None and hit not in chosen:
            chosen.append(hit)
        elif hit is None and rtype in ("", "MedicationRequest"):
            notes.append(f"selection {sel!r} is not a MedicationRequest in draftOrders")
    return chosen


def _one_per_drug(targets: list[Target], notes: list[str]) -> list[Target]:
    """Drafts of one drug signed together are one regimen: one target with the summed daily dose.

    Two baclofen drafts of 40 mg/day each are 80 mg/day for the patient; checked apart, each
    passes. The summed dose keeps the largest single dose and the times a day that give the total.
    """
    by_drug: dict[str, list[Target]] = {}
    for t in targets:
        by_drug.setdefault(t.ingredient, []).append(t)
    out: list[Target] = []
    for ing, group in by_drug.items():
        doses = [t.order.ordered for t in group]
        if len(group) == 1 or any(d is None for d in doses):
            out.extend(group)
            continue
        total = sum(d.dose_mg * d.times_per_day for d in doses if d is not None)
        largest = max(d.dose_mg for d in doses if d is not None)
        summed = OrderedDose(dose_mg=largest, times_per_day=min(24.0, round(total / largest, 4)))
        first = group[0]
        refs = ", ".join(t.order.ref or t.order.label for t in group)
        notes.append(f"{len(group)} {ing} drafts ({refs}) checked together: {total:g} mg/day")
        request = first.request.model_copy(
            update={"drug": first.request.drug.model_copy(update={"ordered_dose": summed})}
        )
        order = replace(first.order, ordered=summed)
        out.append(Target(order, ing, first.purpose, request))
    return out


def plan(hook: str, selections: list[str], profile: FhirProfile, drafts: list[MedOrder], engine: Engine) -> Plan:
    out = Plan()
    active = profile.medications
    if hook == "patient-view":
        for order in active:
            ing = ingredient(order, engine, out.notes)
            if ing is not None and order.route is not None:
                out.other_route.append((order, ing))
            elif ing is not None:
                out.targets.append(
                    Target(order, ing, "review", _request(profile, ing, _others(active, order), order.ordered))
                )
        return out

    new = _selected(drafts, selections, out.notes) if hook == "order-select" else list(drafts)
    purpose: Purpose = "select" if hook == "order-select" else "sign"
    not_covered: list[MedOrder] = []
    for order in new:
        if order.drug is None:
            out.unidentified.append(f"drug of {order.ref or 'a MedicationRequest'}: no code or name to identify it")
            continue
        ing = ingredient(order, engine, out.notes)
        if ing is None and not engine.pack.terminology.resolve_drug(order.drug):
            # nothing in the terminology knows this code or name: say so, never an empty answer
            out.unidentified.append(f"drug of {order.label}{f' ({order.ref})' if order.ref else ''}: not recognised")
        if ing is None:
            not_covered.append(order)
            continue
        if order.route is not None:  # the pack's doses are oral: no oral advice for another route
            out.other_route.append((order, ing))
            continue
        comeds = _others(active, order) + _others(drafts, order)
        dose = order.ordered if purpose == "sign" else None
        out.targets.append(Target(order, ing, purpose, _request(profile, ing, comeds, dose)))

    if purpose == "sign":
        out.targets = _one_per_drug(out.targets, out.notes)
    ordered_now = {t.ingredient for t in out.targets}
    if not_covered:
        for order in active:
            ing = ingredient(order, engine, [])
            if ing is None or ing in ordered_now or order.route is not None:
                continue
            pending = [d for d in drafts if d not in not_covered]
            before = _others(active, order) + pending
            target = Target(order, ing, "new-order", _request(profile, ing, before + not_covered, None))
            target.baseline = _request(profile, ing, before, None)
            target.new_orders = not_covered
            out.targets.append(target)
    return out


def evaluate(targets: list[Target], engine: Engine, decision_id: str) -> list[Evaluated]:
    """Run the engine for every target (twice for new-order checks); engine errors propagate."""
    done: list[Evaluated] = []
    for t in targets:
        resp = engine.evaluate(t.request, decision_id=decision_id)
        added: frozenset[str] | None = None
        if t.baseline is not None:
            before = {f.rule_id for f in engine.evaluate(t.baseline, decision_id=decision_id).findings}
            added = frozenset(f.rule_id for f in resp.findings) - before
        done.append(Evaluated(t, resp, added))
    return done
