"""Shadow evaluation: re-run stored requests on another pack and say what would have changed.

Two questions a rule owner asks before an edit ships, answered from the audit log (only where
``CDSRULES_AUDIT_STORE_INPUTS`` kept the input):

- ``replay_period``: what would a candidate pack have said to last month's patients? Each stored
  request is evaluated on the candidate and compared, as ``cdsrules diff`` compares, with the
  answer the service actually gave (the recorded response), grouped by rule with example ids.
- ``replay_one``: does one decision reproduce on the pack recorded with it (loaded by digest from
  the pack archive, or the current pack when the digests agree), byte for byte apart from ids and
  times; and what would the current pack say instead?

Replay only reads: it writes no audit row, and it never calls an EHR (a CDS Hooks decision is
replayed from the requests mapped at the time, not by fetching FHIR data again). Cards are not
rebuilt: they need the FHIR resources, which are never stored; the evaluations under them are.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.audit.pack_archive import PackArchive
from engine.audit.store import AuditStore
from engine.authoring.diff import Advice, DiffReport, PatientChange, advise, compare, tally
from engine.compiler.model import CompiledPack
from engine.compiler.pack import compile_pack
from engine.errors import CdsRulesError
from engine.runtime.engine import Engine
from schemas.api import EvaluateRequest, EvaluateResponse

__all__ = ["ReplayError", "Replayed", "pairs", "replay_one", "replay_period"]

EXAMPLES_PER_RULE = 5
_HOOK_ONLY = ("order", "purpose")  # what the audit row adds to each evaluation of a CDS Hooks call
_VOLATILE = frozenset({"decision_id", "created_at", "latency_ms"})  # "ids and times aside"


class ReplayError(CdsRulesError):
    """A decision cannot be replayed (unknown id, no stored input, recorded pack not archived)."""


def pairs(decision: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(request, recorded response) for each evaluation a decision made; [] without a stored input."""
    doc = decision.get("input_document")
    if not doc:
        return []
    response = decision["response"]
    if "requests" not in doc:  # /v1/evaluate: the body is the request, the row's response its answer
        return [(doc, response)]
    evaluations = response.get("evaluations", [])
    return [
        (req, {k: v for k, v in ev.items() if k not in _HOOK_ONLY})
        for req, ev in zip(doc["requests"], evaluations, strict=True)
    ]


def _canonical(value: Any) -> bytes:
    def scrub(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: scrub(x) for k, x in v.items() if k not in _VOLATILE}
        if isinstance(v, list):
            return [scrub(x) for x in v]
        return v

    return json.dumps(scrub(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# ---- a period against a candidate --------------------------------------------------------------


def replay_period(
    store: AuditStore,
    candidate: CompiledPack,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> dict[str, Any]:
    """The ``cdsrules diff`` report of recorded answers -> candidate answers, plus replay counts."""
    report = DiffReport(
        {"version": "as recorded", "digest": "the pack of each decision"},
        {"version": candidate.version, "digest": candidate.digest},
        [],
        [],
        [],
    )
    decisions = without_input = 0
    packs: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    engine = Engine(candidate, "durable")
    try:
        for n, decision, req, recorded in _requests(store, since, until):
            if req is None:
                without_input += 1
                continue
            if n == 0:
                decisions += 1
                digest = decision["ruleset"]["digest"]
                packs[digest] = packs.get(digest, 0) + 1
            pid = decision["decision_id"] if n == 0 else f"{decision['decision_id']}#{n}"
            old = Advice.of(EvaluateResponse.model_validate(recorded))
            new = advise(engine, req)
            change = compare(report.patients, pid, req.drug.name or req.drug.rxcui or "?", old, new)
            report.patients += 1
            if change is not None:
                tally(report, change, old, new)
                _example(examples, change, old, new)
    finally:
        engine.close()
    data = report.as_dict()
    data["replay"] = {
        "decisions": decisions,
        "evaluations": report.patients,
        "without_stored_input": without_input,
        "recorded_packs": packs,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
    }
    data["examples"] = examples
    return data


def _requests(
    store: AuditStore, since: dt.datetime | None, until: dt.datetime | None
) -> Iterator[tuple[int, dict[str, Any], EvaluateRequest | None, dict[str, Any]]]:
    for decision in store.iter_decisions(since=since, until=until):
        got = pairs(decision)
        if not got:
            yield 0, decision, None, {}
        for n, (req, recorded) in enumerate(got):
            yield n, decision, EvaluateRequest.model_validate(req), recorded


def _example(out: dict[str, list[str]], ch: PatientChange, old: Advice, new: Advice) -> None:
    """A few decision ids per rule (the rules the diff's per-rule counts name), to open by id."""
    rules = {*ch.fires_added, *ch.fires_removed, *(f[0] for f in ch.findings_added + ch.findings_removed)}
    if ch.dose_changed:
        rules |= old.dose_rules | new.dose_rules
    for rid in sorted(rules):
        ids = out.setdefault(rid, [])
        if len(ids) < EXAMPLES_PER_RULE:
            ids.append(str(ch.id))


# ---- one decision ----------------------------------------------------------------------------


@dataclass
class Replayed:
    decision_id: str
    recorded: dict[str, str]
    current: dict[str, str]
    recorded_pack_from: str  # "current" (same digest) or the archive path
    reproduced: bool
    mismatched_evaluations: list[int] = field(default_factory=list)
    changes_on_current: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _recorded_pack(digest: str, current: CompiledPack, archive: PackArchive | None) -> tuple[CompiledPack, str]:
    if digest == current.digest:
        return current, "current"
    path = archive.path_for(digest) if archive is not None else None
    if path is None:
        where = f"the pack archive {archive.root}" if archive is not None else "a pack archive (none configured)"
        raise ReplayError(f"the pack {digest} is not the current pack and is not in {where}")
    pack = compile_pack(path)
    if pack.digest != digest:  # a tampered archive must never pass for the recorded pack
        raise ReplayError(f"{path} has digest {pack.digest}, not {digest}")
    return pack, str(path)


def replay_one(store: AuditStore, decision_id: str, current: CompiledPack, archive: PackArchive | None) -> Replayed:
    decision = store.get(decision_id)
    if decision is None:
        raise ReplayError(f"no decision {decision_id}")
    got = pairs(decision)
    if not got:
        raise ReplayError(f"decision {decision_id} has no stored input (CDSRULES_AUDIT_STORE_INPUTS was off)")
    pack, source = _recorded_pack(decision["ruleset"]["digest"], current, archive)
    then = Engine(pack, "durable")
    now = then if pack is current else Engine(current, "durable")
    mismatched: list[int] = []
    changes: list[dict[str, Any]] = []
    try:
        for n, (body, recorded) in enumerate(got):
            req = EvaluateRequest.model_validate(body)
            again = then.evaluate(req, decision_id=decision_id).model_dump(mode="json")
            if _canonical(again) != _canonical(recorded):
                mismatched.append(n)
            old = Advice.of(EvaluateResponse.model_validate(recorded))
            change = compare(n, decision_id, req.drug.name or req.drug.rxcui or "?", old, advise(now, req))
            if change is not None:
                changes.append(asdict(change))
    finally:
        then.close()
        if now is not then:
            now.close()
    return Replayed(
        decision_id,
        dict(decision["ruleset"]),
        {"version": current.version, "digest": current.digest},
        source,
        not mismatched,
        mismatched,
        changes,
    )


def reproduce_bytes(recorded: dict[str, Any], again: dict[str, Any]) -> tuple[bytes, bytes]:
    """The two canonical forms ``replay_one`` compares (for tests and for showing a mismatch)."""
    return _canonical(recorded), _canonical(again)
