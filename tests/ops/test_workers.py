"""``cdsrules serve --workers 2``: gunicorn with two uvicorn workers, each with its own compiled rules.

Started as a real subprocess on a free loopback port. Requests on fresh connections must reach both
workers; decisions written by one worker are readable through the other (one shared audit store);
and ``/metrics`` from any worker counts the requests of all of them (PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.audit.records import BODY
from tests.ops.server import running_server

pytestmark = pytest.mark.integration  # `cdsrules serve` processes (gunicorn workers)


def _evaluate_count(metrics_text: str) -> float:
    pattern = r'^cdsrules_http_requests_total\{endpoint="/v1/evaluate",method="POST",outcome="ok"\} (\S+)$'
    m = re.search(pattern, metrics_text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.mark.slow
def test_two_workers_serve_and_share_the_audit_store(tmp_path: Path) -> None:
    env = {
        "CDSRULES_DATABASE_URL": f"sqlite:///{tmp_path}/audit.db",
        "CDSRULES_TEST_LOG": str(tmp_path / "server.log"),
    }
    with running_server(["--workers", "2"], env) as base:
        pids: set[int] = set()
        for _ in range(300):  # a new connection each time, so the kernel can hand it to either worker
            with httpx.Client(base_url=base, timeout=10) as c:
                body = c.get("/readyz").json()
            assert body["status"] == "ready" and body["rules"]["drugs"]
            pids.add(body["worker_pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2, f"only worker(s) {pids} answered"

        ids = []
        for _ in range(6):
            with httpx.Client(base_url=base, timeout=30) as c:
                r = c.post("/v1/evaluate", json=BODY)
            assert r.status_code == 200, r.text
            ids.append(r.json()["decision_id"])
        for decision_id in ids:
            with httpx.Client(base_url=base, timeout=10) as c:
                got = c.get(f"/v1/decisions/{decision_id}")
            assert got.status_code == 200
            assert got.json()["rules_fired"]

        counts = set()
        for _ in range(6):  # whichever worker answers, it reports the whole server
            with httpx.Client(base_url=base, timeout=10) as c:
                counts.add(_evaluate_count(c.get("/metrics").text))
        assert counts == {6.0}
    log = (tmp_path / "server.log").read_text()
    assert "Booting worker" in log or '"logger": "gunicorn.error"' in log


def test_one_worker_from_a_fresh_directory_migrates_and_serves(tmp_path: Path) -> None:
    # what `make run` does on a fresh clone: default settings, no database yet
    env = {"CDSRULES_DATABASE_URL": f"sqlite:///{tmp_path}/var/fresh.db", "CDSRULES_TEST_LOG": str(tmp_path / "log")}
    with running_server([], env) as base:
        with httpx.Client(base_url=base, timeout=30) as c:
            ready = c.get("/readyz").json()
            r = c.post("/v1/evaluate", json=BODY)
            assert r.status_code == 200
            assert c.get(f"/v1/decisions/{r.json()['decision_id']}").status_code == 200
        assert ready["backend"] == "sqlite"
    assert (tmp_path / "var" / "fresh.db").exists()
    import json

    lines = [json.loads(x) for x in (tmp_path / "log").read_text().splitlines() if x.startswith("{")]
    assert any(x["msg"] == "decision recorded" for x in lines), "the server logs JSON lines"
