"""SQLite writers queue on the write gate, across processes, and the log is checkpointed off the request path.

Ordering, not timing: the child process holds the gate and leaves a mark just before it lets go;
the parent, once it holds the gate, must already see that mark. Without the ``flock`` the parent
would get in while the child still holds it and find no mark.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from engine.audit.sqlite_writes import WriteGate
from engine.audit.store import AuditStore
from tests.audit.conftest import HASH_KEY
from tests.audit.records import make_record


def _hold_gate(database: str, holding: str, released: str, go: str) -> None:
    import time

    gate = WriteGate(Path(database))
    with gate:
        Path(holding).touch()
        deadline = time.monotonic() + 30
        while not Path(go).exists() and time.monotonic() < deadline:  # until the parent is waiting
            time.sleep(0.01)
        time.sleep(0.2)  # let the parent block on the gate
        Path(released).touch()
    gate.close()


def test_the_gate_excludes_another_process(tmp_path: Path) -> None:
    database = tmp_path / "audit.db"
    holding, released, go = (str(tmp_path / n) for n in ("holding", "released", "go"))
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_hold_gate, args=(str(database), holding, released, go))
    child.start()
    try:
        for _ in range(3000):
            if Path(holding).exists():
                break
            child.join(0.01)
        assert Path(holding).exists(), "the child took the gate"
        gate = WriteGate(database)
        Path(go).touch()
        with gate:
            assert Path(released).exists(), "the parent got the gate while another process held it"
        gate.close()
    finally:
        child.join(30)
    assert child.exitcode == 0
    assert (tmp_path / "audit.db.write.lock").exists()


def test_writes_leave_checkpointing_to_the_background_and_dispose_completes_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/audit.db"
    store = AuditStore(url, HASH_KEY)
    store.migrate()
    with store.engine.connect() as conn:  # a request's commit never copies the log into the file
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    ids = []
    for _ in range(300):
        rec = make_record()
        store.record(rec)
        ids.append(rec.id)
    store.dispose()  # stops the checkpointer, which checkpoints one last time
    # ``immutable`` reads the database file alone, ignoring the write-ahead log: every row must be in it
    raw = sqlite3.connect(f"file:{tmp_path}/audit.db?immutable=1", uri=True)
    try:
        stored = {row[0] for row in raw.execute("SELECT id FROM decisions")}
    finally:
        raw.close()
    assert stored == set(ids)


def test_the_background_checkpointer_runs(tmp_path: Path) -> None:
    store = AuditStore(f"sqlite:///{tmp_path}/audit.db", HASH_KEY)
    try:
        checkpointer = store._checkpointer
        assert checkpointer is not None
        store.migrate()
        store.record(make_record())
        before = checkpointer.runs
        for _ in range(500):  # it runs once a second; wait up to 5 s for the next run
            if checkpointer.runs > before:
                break
            checkpointer._stop.wait(0.01)
        assert checkpointer.runs > before
    finally:
        store.dispose()


def test_a_memory_store_has_no_checkpointer() -> None:
    store = AuditStore("sqlite:///:memory:", HASH_KEY)
    try:
        assert store._checkpointer is None
        store.migrate()
        store.record(make_record())
        assert store.count() == 1
    finally:
        store.dispose()
