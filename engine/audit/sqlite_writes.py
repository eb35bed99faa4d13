"""Keep SQLite's one-writer rule from turning into latency spikes under load.

SQLite lets one connection write at a time. A writer that finds the database locked does not
queue: its busy handler sleeps in growing steps (1, 2, 5, 10 ... 100 ms) and tries again, so with
several server workers writing the audit log, one of them can sleep for hundreds of milliseconds
while the other keeps winning, and every request of the sleeping worker waits behind it (measured
in BENCHMARKS.md: 0.7-1 s stalls at 300 requests/s with two workers). Two changes remove that:

* ``WriteGate`` queues writers instead: a thread lock inside the process and an ``flock`` on a
  file beside the database across processes. Blocked writers sleep in the kernel and wake the
  moment the holder is done, in order, so SQLite never sees two of our writers at once.
* ``Checkpointer`` copies the write-ahead log into the database from a background thread, once
  a second, instead of SQLite's automatic checkpoint, which runs inside whichever commit crosses
  1,000 pages and makes that request, and everyone queued behind it, wait for the copy and its
  fsync. It copies in two passes: the bulk while writers go on, then what they added meanwhile
  with the gate held. The second pass matters: SQLite only restarts the log from its beginning
  once a checkpoint has caught up with every frame, which under constant writes a checkpoint
  racing the writers never does (measured: the log grew by 80 MB a second, without bound).

Neither applies to PostgreSQL, whose rows lock individually, or to an in-memory database (one
connection, no log).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import SQLAlchemyError

try:
    import fcntl
except ImportError:  # not POSIX: the thread lock still orders this process's writers
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("cdsrules.audit")

CHECKPOINT_INTERVAL_S = 1.0


class WriteGate:
    """A context manager held around every write transaction to one SQLite file."""

    def __init__(self, database: Path) -> None:
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        if fcntl is not None:
            self._fd = os.open(f"{database}.write.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> WriteGate:
        self._thread_lock.acquire()  # flock is per open file: threads sharing the fd need this too
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        with self._thread_lock:  # not while a writer (or the checkpointer) holds the lock file
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Checkpointer:
    """A daemon thread that checkpoints the write-ahead log every ``interval_s`` seconds."""

    def __init__(self, engine: SqlEngine, gate: WriteGate, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self._engine = engine
        self._gate = gate
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.runs = 0
        self._thread = threading.Thread(target=self._loop, name="cdsrules-wal-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.checkpoint()

    def checkpoint(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
                with self._gate:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
            self.runs += 1
        except SQLAlchemyError as exc:  # the next write still succeeds; the log is just longer
            log.warning("audit log checkpoint failed: %s", type(exc).__name__)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.checkpoint()  # leave the database file complete for backups and exports
