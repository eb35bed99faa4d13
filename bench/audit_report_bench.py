"""How long the override report takes on a large audit log, on SQLite and on PostgreSQL.

The rows are made by the database itself (one ``INSERT ... SELECT`` over a recursive CTE or
``generate_series`` per table), so a million decisions load in about a minute instead of the
hours a million API calls would take. The shape mimics a busy service: ~1.33 cards per decision
across 12 rules and three severities, four pack versions, 26 weeks, and feedback on 40 % of the
cards (60 % of it overrides, four coded reasons, some comments).

    .venv/bin/python -m bench.audit_report_bench --decisions 1000000
    .venv/bin/python -m bench.audit_report_bench --decisions 100000 --backends sqlite

PostgreSQL comes from ``--pg-url`` or, without it, a throwaway cluster started from Debian's
binaries (``tests/pg.py``). Results are printed and written as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

from engine.audit.analytics import Period, summary
from engine.audit.store import AuditStore

KEY = "bench-hash-key-0123456789abcdef0123456789"
START = "2026-06-01"

SQLITE_FILL = [
    """
    INSERT INTO decisions (id, created_at, endpoint, hook, hook_instance, service_id, ruleset_version,
        ruleset_digest, drug, rules_fired, response, latency_ms, input_sha256, patient_ref_hash, input_document)
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :n - 1)
    SELECT printf('d%035d', i), strftime('%Y-%m-%d %H:%M:%f000', :start, '+' || (i * 15) || ' seconds'),
        '/cds-services/muscle-relaxant-dosing', 'order-select', printf('h%d', i), 'muscle-relaxant-dosing',
        '0.2.' || (i * 4 / :n), 'sha256:' || (i * 4 / :n), 'baclofen', '[]', '{}', 1.5, printf('%064d', i),
        NULL, NULL
    FROM n
    """,
    """
    INSERT INTO decision_cards (card_uuid, decision_id, created_at, rule_id, rule_version, severity, topic,
        has_suggestion, ruleset_version)
    SELECT 'c' || substr(id, 2), id, created_at, 'rule-' || (CAST(substr(id, 2) AS INTEGER) % 12), '1.0.0',
        CASE CAST(substr(id, 2) AS INTEGER) % 3 WHEN 0 THEN 'critical' WHEN 1 THEN 'warning' ELSE 'info' END,
        'renal', CAST(substr(id, 2) AS INTEGER) % 4 = 0, ruleset_version
    FROM decisions
    UNION ALL
    SELECT 'x' || substr(id, 2), id, created_at, NULL, NULL, 'info', 'not-checked', 0, ruleset_version
    FROM decisions WHERE CAST(substr(id, 2) AS INTEGER) % 3 = 0
    """,
    """
    INSERT INTO feedback (id, card_uuid, service_id, outcome, outcome_timestamp, received_at, item)
    SELECT 'f' || card_uuid, card_uuid, 'muscle-relaxant-dosing',
        CASE WHEN k % 10 < 6 THEN 'overridden' ELSE 'accepted' END, created_at, created_at,
        CASE WHEN k % 10 < 6 THEN json_object('card', card_uuid, 'outcome', 'overridden',
            'overrideReason', json_object('reason', json_object('code', 'reason-' || (k % 4), 'system', 'urn:x'),
                'userComment', CASE WHEN k % 7 = 0 THEN 'seen' END))
        ELSE json_object('card', card_uuid, 'outcome', 'accepted') END
    FROM (SELECT card_uuid, created_at, CAST(substr(card_uuid, 2) AS INTEGER) AS k FROM decision_cards)
    WHERE k % 5 < 2
    """,
    "ANALYZE",
]

PG_FILL = [
    """
    INSERT INTO decisions (id, created_at, endpoint, hook, hook_instance, service_id, ruleset_version,
        ruleset_digest, drug, rules_fired, response, latency_ms, input_sha256, patient_ref_hash, input_document)
    SELECT 'd' || lpad(i::text, 35, '0'), timestamptz '2026-06-01 00:00:00+00' + i * interval '15 seconds',
        '/cds-services/muscle-relaxant-dosing', 'order-select', 'h' || i, 'muscle-relaxant-dosing',
        '0.2.' || (i::bigint * 4 / :n), 'sha256:' || (i::bigint * 4 / :n), 'baclofen', '[]', '{}', 1.5,
        lpad(i::text, 64, '0'), NULL, NULL
    FROM generate_series(0, :n - 1) AS i
    """,
    """
    INSERT INTO decision_cards (card_uuid, decision_id, created_at, rule_id, rule_version, severity, topic,
        has_suggestion, ruleset_version)
    SELECT 'c' || substr(id, 2), id, created_at, 'rule-' || (substr(id, 2)::bigint % 12), '1.0.0',
        CASE substr(id, 2)::bigint % 3 WHEN 0 THEN 'critical' WHEN 1 THEN 'warning' ELSE 'info' END,
        'renal', substr(id, 2)::bigint % 4 = 0, ruleset_version
    FROM decisions
    UNION ALL
    SELECT 'x' || substr(id, 2), id, created_at, NULL, NULL, 'info', 'not-checked', false, ruleset_version
    FROM decisions WHERE substr(id, 2)::bigint % 3 = 0
    """,
    """
    INSERT INTO feedback (id, card_uuid, service_id, outcome, outcome_timestamp, received_at, item)
    SELECT 'f' || card_uuid, card_uuid, 'muscle-relaxant-dosing',
        CASE WHEN k % 10 < 6 THEN 'overridden' ELSE 'accepted' END, created_at::text, created_at,
        CASE WHEN k % 10 < 6 THEN json_build_object('card', card_uuid, 'outcome', 'overridden',
            'overrideReason', json_build_object('reason', json_build_object('code', 'reason-' || (k % 4),
                'system', 'urn:x'), 'userComment', CASE WHEN k % 7 = 0 THEN 'seen' END))
        ELSE json_build_object('card', card_uuid, 'outcome', 'accepted') END
    FROM (SELECT card_uuid, created_at, substr(card_uuid, 2)::bigint AS k FROM decision_cards) AS c
    WHERE k % 5 < 2
    """,
    "ANALYZE",
]


def fill(store: AuditStore, n: int) -> dict[str, float]:
    """Load ``n`` decisions and their cards and feedback; seconds per table."""
    statements = SQLITE_FILL if store.backend == "sqlite" else PG_FILL
    took: dict[str, float] = {}
    with store.engine.begin() as conn:
        for name, sql in zip(("decisions", "decision_cards", "feedback", "analyze"), statements, strict=True):
            started = time.perf_counter()
            conn.execute(text(sql), {"n": n, "start": START} if name == "decisions" else {})
            took[name] = round(time.perf_counter() - started, 1)
    return took


def counts(store: AuditStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())  # fixed table names
            for t in ("decisions", "decision_cards", "feedback")
        }


def time_report(store: AuditStore, period: Period, runs: int) -> dict[str, Any]:
    seconds = []
    result: dict[str, Any] = {}
    for _ in range(runs):
        started = time.perf_counter()
        result = summary(store.engine, period)
        seconds.append(time.perf_counter() - started)
    return {
        "runs_s": [round(s, 2) for s in seconds],
        "median_s": round(statistics.median(seconds), 2),
        "cards_shown": result["totals"]["shown"],
        "groups": len(result["cards"]),
    }


@contextmanager
def database(backend: str, workdir: Path, pg_url: str | None) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir}/bench-audit.db"
        return
    if pg_url:
        yield pg_url
        return
    from tests.pg import pg_cluster  # the test helper: a throwaway cluster from Debian's binaries

    with pg_cluster() as cluster:
        yield cluster.create_database()


def bench(backend: str, n: int, runs: int, pg_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp, database(backend, Path(tmp), pg_url) as url:
        store = AuditStore(url, KEY)
        try:
            store.migrate()
            load = fill(store, n)
            rows = counts(store)
            full = time_report(store, Period(), runs)
            import datetime as dt

            month = Period(dt.datetime(2026, 8, 1, tzinfo=dt.UTC), dt.datetime(2026, 9, 1, tzinfo=dt.UTC), "rule-5")
            one_rule_month = time_report(store, month, runs)
        finally:
            store.dispose()
    return {"backend": backend, "rows": rows, "load_s": load, "report_all": full, "report_rule_month": one_rule_month}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--decisions", type=int, default=1_000_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg-url", default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    results = []
    for backend in args.backends.split(","):
        got = bench(backend, args.decisions, args.runs, args.pg_url)
        print(json.dumps(got, indent=2), flush=True)
        results.append(got)
    if args.out:
        args.out.write_text(json.dumps({"decisions": args.decisions, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
