"""Each measured durable-rules hazard, with a test that fails if its containment breaks.

See docs/durable-rules.md for the hazards and the experiments behind them.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import threading
from typing import Any

import durable_rules_engine as dre
import psutil
import pytest

from engine.compiler.model import CompiledPack
from engine.errors import EngineError
from engine.runtime.durable_host import DurableRuleset, SidPool, fnv1a32
from engine.runtime.engine import Engine
from tests.conftest import REPO, request

NEVER_MATCHES = {
    "__sentinel": {"all": [{"m": {"t": "__eval__"}}]},
    "r0": {"all": [{"p": {"$and": [{"t": "patient"}, {"$gte": {"age_years": 200.0}}]}}]},
}


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_session_where_no_rule_fires_is_deleted_safely() -> None:
    # delete_state segfaults on a session where no action fired; the sentinel prevents that.
    # Run in a child process so a regression shows as a failed exit code, not a dead test run.
    code = f"""
from engine.runtime.durable_host import DurableRuleset
rs = DurableRuleset("nofire", {json.dumps(NEVER_MATCHES)}, {{}})
for i in range(2000):
    firing = rs.evaluate({{"age_years": float(i % 90), "action": "start"}})
    assert firing.fired == frozenset(), firing
print("ok")
"""
    result = _run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def test_more_than_1024_sessions_are_all_cleaned_up() -> None:
    rs = DurableRuleset("many", NEVER_MATCHES, {})
    for i in range(3000):  # the 1,025th live session would fail for good
        rs.evaluate({"age_years": float(i % 100), "action": "start"})
    for sid in rs._pool._free:
        assert rs.live_facts(sid) == []
    rs.close()


def test_colliding_session_ids_share_facts_in_the_engine() -> None:
    # the hazard is real: these two ids hash alike, and durable-rules then serves one's facts to the other
    a, b = "req-991307", "req-1971740"
    assert fnv1a32(a) == fnv1a32(b)
    definition = {"r": {"all": [{"m": {"t": "patient"}}]}}
    handle = dre.create_ruleset("collide-demo", json.dumps(definition))
    dre.assert_fact(handle, json.dumps({"t": "patient", "sid": a, "age_years": 80.0}))
    leaked = json.loads(dre.get_facts(handle, b))
    assert any(f.get("age_years") == 80.0 for f in leaked), "ids with one hash share a session"
    dre.delete_ruleset(handle)


def test_sid_pool_never_hands_out_two_ids_with_one_hash() -> None:
    pool = SidPool(size=2, names=iter(["req-991307", "req-1971740", "slot-x", "slot-y", "slot-z"]))
    handed = [pool.acquire(), pool.acquire()]
    assert "req-1971740" not in handed
    assert len({fnv1a32(s) for s in handed}) == 2


def test_retired_sid_is_never_reused() -> None:
    pool = SidPool(size=1)
    sid = pool.acquire()
    pool.retire(sid)
    assert all(pool.acquire() != sid for _ in range(50))


def test_failed_evaluation_leaks_nothing_into_the_next(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    rs = engine._rulesets["baclofen"]
    original = rs._drain
    calls = {"n": 0}

    def failing_drain(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # after the patient fact went in
            raise dre.error("simulated engine failure")
        original(*args)

    monkeypatch.setattr(rs, "_drain", failing_drain)
    allergic = request(allergies=[{"name": "baclofen"}], age_years=80, egfr_ml_min_1_73m2=20)
    with pytest.raises(EngineError):
        engine.evaluate(allergic)
    monkeypatch.setattr(rs, "_drain", original)
    clean = engine.evaluate(request())
    assert not clean.contraindicated
    assert {f.category for f in clean.findings}.isdisjoint({"allergy", "geriatric", "renal"})
    for sid in rs._pool._free:
        assert rs.live_facts(sid) == []


def test_session_whose_delete_fails_is_retired(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    rs = engine._rulesets["baclofen"]
    seen: list[str] = []

    def failing_delete(sid: str) -> bool:
        seen.append(sid)
        return False

    monkeypatch.setattr(rs, "_delete", failing_delete)
    engine.evaluate(request())
    monkeypatch.undo()
    assert seen and seen[0] not in rs._pool._free


def test_threads_never_see_each_others_facts(engine: Engine, reference_engine: Engine) -> None:
    patients = [
        request(age_years=30 + i, egfr_ml_min_1_73m2=15 + 7 * i, co_medications=[{"name": "oxycodone"}] * (i % 2))
        for i in range(12)
    ]
    expected = [reference_engine.evaluate(p).model_dump(exclude={"decision_id"}) for p in patients]
    errors: list[str] = []
    timers_before = {t.ident for t in threading.enumerate() if isinstance(t, threading.Timer)}

    def worker(offset: int) -> None:
        for k in range(300):
            i = (k + offset) % len(patients)
            got = engine.evaluate(patients[i]).model_dump(exclude={"decision_id"})
            if got != expected[i]:
                errors.append(f"thread {offset} patient {i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    timers_after = {t.ident for t in threading.enumerate() if isinstance(t, threading.Timer)}
    assert timers_after <= timers_before, "no durable-rules background timer threads may run"


def test_no_durable_host_and_no_python_actions(pack: CompiledPack) -> None:
    result = _run_python("import sys, engine.runtime.engine, engine.api.app; print('durable.engine' in sys.modules)")
    assert result.stdout.strip() == "False", "the threaded durable.engine.Host must never be imported"
    for dr in pack.drugs.values():
        assert '"run"' not in json.dumps(dr.durable_definition)


def test_only_durable_host_touches_durable_rules() -> None:
    offenders = []
    for path in (REPO / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n.startswith(("durable", "durable_rules_engine")) for n in names):
                offenders.append(path.name)
    assert set(offenders) == {"durable_host.py"}


def test_engine_errors_are_mapped() -> None:
    with pytest.raises(EngineError, match="refused ruleset"):
        DurableRuleset("bad", {"r": {"all": [{"m": {"$foo": {"a": 1}}}]}}, {})
    rs = DurableRuleset("idguard", NEVER_MATCHES, {})
    with pytest.raises(EngineError, match="'id'"):
        rs.evaluate({"id": 7, "action": "start"})
    with pytest.raises(EngineError, match="properties"):
        rs.evaluate({f"k{i}": 1.0 for i in range(300)})
    rs.close()
    with pytest.raises(EngineError, match="retired"):
        rs.evaluate({"action": "start"})


def test_numbers_reach_the_engine_as_numbers(engine: Engine) -> None:
    # durable-rules compares "100" < 60 as strings; the request model and fact builder prevent it
    req = request(egfr_ml_min_1_73m2="45", age_years="50", weight_kg="80")
    _, pf = engine.facts(req)
    for name in ("age_years", "weight_kg", "renal_ml_min", "egfr_ml_min"):
        assert isinstance(pf.fact[name], float), name
    resp = engine.evaluate(req)
    assert resp.renal.band == "moderate"
    assert resp.dose is not None and resp.dose.start.total_daily_mg == 7.5


@pytest.mark.slow
def test_memory_stays_flat_over_100k_evaluations(engine: Engine) -> None:
    facts = [engine.facts(request(age_years=20 + 7 * i, egfr_ml_min_1_73m2=10 + 9 * i))[1].fact for i in range(10)]
    for i in range(5000):
        engine.fire("baclofen", facts[i % 10])
    proc = psutil.Process()
    before = proc.memory_info().rss
    for i in range(100_000):
        engine.fire("baclofen", facts[i % 10])
    growth_mb = (proc.memory_info().rss - before) / 1e6
    assert growth_mb < 10, f"RSS grew {growth_mb:.1f} MB over 100k evaluations"
