"""Eight writer processes for a full minute lose nothing: every acknowledged decision is stored.

Processes, not threads, because that is how the service runs (gunicorn workers, replicas): each
writer has its own connection pool, and on SQLite they contend for the one file through its lock.
Each writer records a real ``/v1/evaluate`` response as fast as it can. The test asserts that the
set of ids the store acknowledged equals the set of ids in the database, and that no write failed.
The timings are printed (``pytest -s``) for the record; CONTRIBUTING keeps speed out of assertions.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
from typing import Any

import pytest
import sqlalchemy as sa

from engine.audit.store import AuditStore
from engine.runtime.engine import Engine
from schemas.api import EvaluateRequest
from tests.audit.records import BODY, soak_writer

WRITERS = 8
SECONDS = float(os.environ.get("CDSRULES_SOAK_SECONDS", "60"))  # the minute; shorten only locally


@pytest.mark.slow
def test_eight_writers_for_a_minute_lose_nothing(store: AuditStore, db_url: str, engine: Engine) -> None:
    response = engine.evaluate(EvaluateRequest.model_validate(BODY)).model_dump(mode="json")
    assert response["trace"], "a response with fired rules, as in production"
    ctx = multiprocessing.get_context("spawn")  # no inherited connections or rule-engine state
    with ctx.Pool(WRITERS) as pool:
        results: list[dict[str, Any]] = pool.starmap(
            soak_writer, [(db_url, SECONDS, response, w) for w in range(WRITERS)]
        )

    acked = [i for r in results for i in r["acked"]]
    failures = sum(r["failures"] for r in results)
    with store.engine.connect() as conn:
        stored = {row[0] for row in conn.execute(sa.text("SELECT id FROM decisions"))}
        rule_rows = conn.execute(sa.text("SELECT count(*) FROM decision_rules")).scalar()

    latencies = sorted(x for r in results for x in r["latencies"])
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    print(
        f"\n[{store.backend}] {WRITERS} writers x {SECONDS:.0f}s: acknowledged={len(acked)} stored={len(stored)} "
        f"failures={failures} rate={len(acked) / SECONDS:.0f}/s write ms p50={q[49] * 1000:.2f} "
        f"p95={q[94] * 1000:.2f} p99={q[98] * 1000:.2f} max={latencies[-1] * 1000:.2f}"
    )
    assert all(r["acked"] for r in results), "every writer got writes through"
    assert failures == 0
    assert len(acked) == len(set(acked))
    assert set(acked) == stored  # count in == count stored, and the same ids
    assert store.count() == len(acked)
    assert rule_rows == len(acked) * len({t["rule_id"] for t in response["trace"]})
