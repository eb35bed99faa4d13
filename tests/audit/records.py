"""Decision records for audit tests, and the writer process of the concurrency soak.

The writer lives in an importable module (not a test file) because it runs in spawned processes.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from engine.audit.store import AuditError, AuditStore, DecisionRecord

BODY: dict[str, Any] = {
    "patient": {"age_years": 67, "sex": "female", "weight_kg": 62, "serum_creatinine_mg_dl": 1.3},
    "drug": {"name": "baclofen", "action": "start"},
}


def make_record(
    rules: list[tuple[str, str]] | None = None,
    patient_ref: str | None = None,
    response: dict[str, Any] | None = None,
    input_document: dict[str, Any] | None = None,
    **kw: Any,
) -> DecisionRecord:
    rules = rules if rules is not None else [("baclofen.dose.adult-start", "1.0.0")]
    return DecisionRecord(
        id=kw.pop("id", str(uuid.uuid4())),
        endpoint=kw.pop("endpoint", "/v1/evaluate"),
        ruleset_version="0.1.0",
        ruleset_digest="sha256:" + "0" * 64,
        drug="baclofen",
        rules_fired=[{"rule_id": r, "version": v} for r, v in rules],
        response=response if response is not None else {"findings": [], "trace": [r for r, _ in rules]},
        latency_ms=1.5,
        input_document=input_document if input_document is not None else BODY,
        patient_ref=patient_ref,
        **kw,
    )


def soak_writer(url: str, seconds: float, response: dict[str, Any], worker: int) -> dict[str, Any]:
    """Record decisions as fast as possible for ``seconds``; report ids acknowledged and timings."""
    store = AuditStore(url, "soak-key")
    rules = [(t["rule_id"], t["version"]) for t in response["trace"]]
    acked: list[str] = []
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            rec = make_record(rules=rules, response=response, patient_ref=f"patient-{worker}-{len(acked)}")
            started = time.perf_counter()
            try:
                store.record(rec)
            except AuditError:
                failures += 1
                continue
            latencies.append(time.perf_counter() - started)
            acked.append(rec.id)
    finally:
        store.dispose()
    return {"worker": worker, "acked": acked, "failures": failures, "latencies": latencies}
