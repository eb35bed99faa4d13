"""How every SQLite audit connection is set up, and why the journal is not WAL by default.

In WAL mode SQLite keeps its wal-index in the ``-shm`` file and reaches it through ``mmap``
(SQLite file format, section 4.5 "WAL-Index Format", sqlite.org/fileformat2.html), and readers as
well as writers store into that mapping. A fault on a mapped page is a signal, not an error code:
"An I/O error on a memory-mapped file cannot be caught and dealt with by SQLite. Instead, the I/O
error causes a signal which, if not caught by the application, results in a program crash"
(sqlite.org/mmap.html, disadvantages). Linux's ext4 answers a store into a mapped page of an
immutable file with SIGBUS (``ext4_page_mkwrite``, kernel commit 02b016ca7f99 "ext4: enforce the
immutable flag on open files"), so ``chattr +i`` on the files, or anything else that makes the
mapped ``-shm`` unwritable, killed every worker mid-request instead of giving the 503 the service
promises. The heap wal-index that avoids the mapping ("Use of WAL Without Shared-Memory",
sqlite.org/wal.html section 8) needs ``locking_mode=EXCLUSIVE``, which locks out every other
process, so it cannot serve several workers.

A rollback journal (``TRUNCATE``) uses only read/write/fsync system calls, so every storage
failure comes back as an error the store turns into 503, and the next commit after the files are
writable again succeeds. ``PRAGMA mmap_size`` stays 0 for the same reason (0 is SQLite's default).
What it costs: a commit fsyncs the journal and the database (WAL fsyncs one file), and readers and
the writer wait for each other (sqlite.org/wal.html, "Overview": WAL lets them proceed at once).
BENCHMARKS.md has the measured difference; ``CDSRULES_SQLITE_JOURNAL_MODE=wal`` keeps WAL for a
deployment that prefers that speed and accepts the crash on unwritable files.

A connection opened while its file cannot be written is read-only for the rest of its life: SQLite's
unix VFS falls back to ``O_RDONLY`` when ``O_RDWR`` is refused and never reopens the file (every
later write gives "attempt to write a readonly database", even once the file is writable). Pooled,
such a connection kept one worker refusing every decision long after the storage came back. So a
connection that found its file unwritable when it opened, or that a write found read-only
(``mark_read_only_connection``, for the open that races the file becoming writable again), is
closed when it is returned instead of pooled (``close_unwritable_on_checkin``): the next checkout
opens the file afresh. Connections
opened while the file was writable keep working once it is writable again, so they stay pooled.
(Discarding the whole pool on any storage error was tried and is wrong: SQLAlchemy's invalidation
skips the rollback, and on a full disk the failed connection kept its lock until garbage
collection, so every other writer waited out ``busy_timeout``.)
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from typing import Any, Literal

log = logging.getLogger("cdsrules.audit")

JournalMode = Literal["truncate", "wal"]
JOURNAL_MODES: tuple[JournalMode, ...] = ("truncate", "wal")


def connection_setup(journal_mode: JournalMode) -> Callable[[Any, Any], None]:
    """The SQLAlchemy ``connect`` listener that applies our pragmas to each new connection."""
    if journal_mode not in JOURNAL_MODES:
        raise ValueError(f"SQLite journal mode must be one of {', '.join(JOURNAL_MODES)}, not {journal_mode!r}")

    def setup(dbapi_conn: Any, record: Any) -> None:
        cur = dbapi_conn.cursor()
        try:
            record.info["unwritable"] = _unwritable(cur)
            # first, so that the statements below wait for a lock instead of failing at once
            cur.execute("PRAGMA busy_timeout=30000")
            _set_journal_mode(cur, journal_mode)
            # FULL: a decision's commit is on disk before its answer is sent, even across a power
            # loss or OS crash; NORMAL would leave the last commits of a crash to chance.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA mmap_size=0")  # reads through read(2): an I/O error stays an error
            cur.execute("PRAGMA foreign_keys=ON")
        finally:
            cur.close()

    return setup


_SQLITE_READONLY = 8


def _unwritable(cur: Any) -> bool:
    """The main database file, or the directory its journal is created in, cannot be written now."""
    row = cur.execute("PRAGMA database_list").fetchone()
    path = str(row[2]) if row and row[2] else ""
    if not path:  # in-memory
        return False
    return not (os.access(path, os.W_OK) and os.access(os.path.dirname(path) or ".", os.W_OK))


def mark_read_only_connection(context: Any) -> None:
    """SQLAlchemy ``handle_error`` listener: a connection SQLite answers "readonly" is not pooled again.

    The check at connect time can race the file becoming writable again (opened read-only, checked
    writable a moment later); SQLITE_READONLY (primary result code 8, sqlite.org/rescode.html) on
    a write is the certain sign. The connection is only marked: the transaction is rolled back as
    usual and ``close_unwritable_on_checkin`` closes it when it is returned.
    """
    original = getattr(context, "original_exception", None)
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF == _SQLITE_READONLY and context.connection is not None:
        context.connection.info["unwritable"] = True


def close_unwritable_on_checkin(_dbapi_conn: Any, record: Any) -> None:
    """SQLAlchemy ``checkin`` listener: never pool a connection SQLite opened read-only."""
    if record is not None and record.info.get("unwritable"):
        record.invalidate()


def _set_journal_mode(cur: Any, wanted: JournalMode) -> None:
    """Switch the file's journal; leaving WAL needs the file to itself, so it may have to wait.

    WAL is a property of the file (it persists), the rollback modes are per connection. A file
    still in WAL while another process holds it open cannot leave WAL now; the connection then
    works in WAL, and the next connection that finds the file to itself converts it.
    """
    try:
        got = str(cur.execute(f"PRAGMA journal_mode={wanted}").fetchone()[0]).lower()
    except sqlite3.OperationalError as exc:  # "database is locked": another connection is in WAL
        got = str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        log.warning(
            "audit database stays in %s journal mode for now (%s); it changes to %s when no other process has it open",
            got,
            exc,
            wanted,
        )
        return
    if got != wanted:
        log.warning("audit database journal mode is %s, not %s", got, wanted)
