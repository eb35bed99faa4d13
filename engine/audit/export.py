"""Audit export: the decision log as JSON Lines or CSV, streamed a page at a time.

Reviews, incident investigations and data-protection requests happen outside the service, in
spreadsheets and notebooks. JSON Lines keeps every field as stored; CSV flattens the nested ones
(rules fired as ``id@version`` joined by ``;``, the response and input as JSON text) so one row is
one decision. Neither holds more than the store does: no raw patient id, no tokens.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable
from typing import Any, Literal, TextIO

from engine.audit.store import AuditStore

Format = Literal["jsonl", "csv"]

CSV_COLUMNS = (
    "decision_id",
    "created_at",
    "endpoint",
    "hook",
    "hook_instance",
    "service_id",
    "ruleset_version",
    "ruleset_digest",
    "drug",
    "rules_fired",
    "latency_ms",
    "input_sha256",
    "patient_ref_hash",
    "response",
    "input_document",
)


def csv_row(d: dict[str, Any]) -> dict[str, Any]:
    """One decision as flat CSV cells."""
    return {
        **{k: d.get(k) for k in CSV_COLUMNS},
        "ruleset_version": d["ruleset"]["version"],
        "ruleset_digest": d["ruleset"]["digest"],
        "rules_fired": ";".join(f"{r['rule_id']}@{r.get('version', '')}" for r in d["rules_fired"]),
        "response": json.dumps(d["response"], sort_keys=True, separators=(",", ":")),
        "input_document": "" if d["input_document"] is None else json.dumps(d["input_document"], sort_keys=True),
    }


def write(rows: Iterable[dict[str, Any]], fmt: Format, out: TextIO) -> int:
    """Write every row; returns how many."""
    n = 0
    if fmt == "jsonl":
        for d in rows:
            out.write(json.dumps(d, sort_keys=True, ensure_ascii=False) + "\n")
            n += 1
        return n
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for d in rows:
        writer.writerow(csv_row(d))
        n += 1
    return n


def export(
    store: AuditStore,
    out: TextIO,
    fmt: Format = "jsonl",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    rule_id: str | None = None,
) -> int:
    return write(store.iter_decisions(since=since, until=until, rule_id=rule_id), fmt, out)
