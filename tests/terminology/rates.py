"""Recognition rates of the bundled terminology over published codes, in the three forms EHRs send.

Fixtures (tests/data/terminology/*-codes.json) hold real codes from public value-set expansions with
their displays and source OIDs. A code is recognised in a form when the engine's patient fact puts it
in the value set the fixture names (and, for a medication, reads the product in full).
Also run as a script (``python -m tests.terminology.rates``) to print the table for a report.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.terminology import Terminology
from schemas.api import CodeableConcept, DrugRef

DATA = Path(__file__).resolve().parents[1] / "data" / "terminology"
SYSTEMS = {
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "snomed": "http://snomed.info/sct",
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "ndc": "http://hl7.org/fhir/sid/ndc",
}
FORMS = ("code+display", "code", "text")


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


def drug_ref(item: dict[str, Any], form: str) -> DrugRef:
    if form == "text":
        return DrugRef(name=item["display"])
    name = item["display"] if form == "code+display" else None
    if item["system"] == "ndc":
        return DrugRef(ndc=item["code"], name=name)
    return DrugRef(rxcui=item["code"], name=name)


def condition(item: dict[str, Any], form: str) -> CodeableConcept | str:
    if form == "text":
        return str(item["display"])
    coding: dict[str, str] = {"system": SYSTEMS[item["system"]], "code": item["code"]}
    if form == "code+display":
        coding["display"] = item["display"]
    return CodeableConcept.model_validate({"coding": [coding]})


def medication_hit(term: Terminology, item: dict[str, Any], form: str) -> bool:
    m = term.match_drug(drug_ref(item, form))
    return m.complete and item["set"] in term.classes_for(m.ingredients)


def condition_hit(term: Terminology, item: dict[str, Any], form: str) -> bool:
    return item["set"] in term.match_condition(condition(item, form)).value_sets


@dataclass
class Rates:
    hits: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    totals: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    misses: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))

    def rate(self, form: str, set_id: str | None = None) -> float:
        sets = [set_id] if set_id else list(self.totals)
        total = sum(self.totals[s] for s in sets)
        return sum(self.hits[(s, form)] for s in sets) / total if total else 1.0


def measure(term: Terminology, kind: str, held_out: bool | None = None) -> Rates:
    data = fixture(f"{kind}-codes.json")
    hit = medication_hit if kind == "medication" else condition_hit
    rates = Rates()
    for item in data["codes"]:
        if held_out is not None and bool(item.get("held_out")) != held_out:
            continue
        rates.totals[item["set"]] += 1
        for form in FORMS:
            if hit(term, item, form):
                rates.hits[(item["set"], form)] += 1
            else:
                rates.misses[(item["set"], form)].append(f"{item['system']}|{item['code']} {item['display']}")
    return rates


def main() -> None:
    from engine.pipeline import prepare_or_raise
    from engine.settings import BUNDLED_RULES

    prepared = prepare_or_raise(BUNDLED_RULES)
    term = prepared.pack.terminology
    for kind in ("medication", "condition"):
        r = measure(term, kind, held_out=False)
        n = sum(r.totals.values())
        print(f"{kind}: {n} codes, {len(r.totals)} sets; " + ", ".join(f"{f} {r.rate(f):.1%}" for f in FORMS))
        for s in sorted(r.totals):
            rates = " ".join(f"{r.rate(f, s):6.1%}" for f in FORMS)
            print(f"  {s:40s} {r.totals[s]:4d} {rates}")
        held = measure(term, kind, held_out=True)
        if held.totals:
            print(
                f"  held out: {sum(held.totals.values())} codes; " + ", ".join(f"{f} {held.rate(f):.1%}" for f in FORMS)
            )
    prepared.close()


if __name__ == "__main__":
    main()
