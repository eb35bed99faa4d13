"""The SQLite audit file uses a rollback journal and no memory mapping, so unwritable files are an error.

In WAL mode the wal-index lives in the memory-mapped ``-shm`` file, and a store into a mapped page
of an immutable file is a SIGBUS (ext4): both workers died mid-request when the files were made
immutable. With ``journal_mode=TRUNCATE`` and ``mmap_size=0`` the same event is an ``AuditError``
(503 to the caller) and the next commit after the files are writable succeeds.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.audit.sqlite_setup import connection_setup
from engine.audit.store import AuditError, AuditStore
from tests.audit.records import make_record
from tests.needs import unavailable


def _store(path: Path, **kw: object) -> AuditStore:
    store = AuditStore(f"sqlite:///{path}", "test-key", **kw)  # type: ignore[arg-type]
    store.migrate()
    return store


def test_connections_use_a_rollback_journal_without_mmap(tmp_path: Path) -> None:
    store = _store(tmp_path / "audit.db")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "truncate"
            assert conn.exec_driver_sql("PRAGMA mmap_size").scalar() == 0
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        store.record(make_record())
        assert not (tmp_path / "audit.db-shm").exists()
    finally:
        store.dispose()


def test_wal_stays_available_when_asked_for(tmp_path: Path) -> None:
    store = _store(tmp_path / "audit.db", sqlite_journal_mode="wal")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        store.dispose()


def test_an_unknown_journal_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="journal mode"):
        connection_setup("delete")  # type: ignore[arg-type]


def test_a_file_left_in_wal_is_converted_and_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    old = _store(db, sqlite_journal_mode="wal")
    rec = make_record()
    old.record(rec)
    old.dispose()
    store = AuditStore(f"sqlite:///{db}", "test-key")
    try:
        assert store.get(rec.id) is not None
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "truncate"
    finally:
        store.dispose()


def test_a_wal_file_another_process_holds_still_takes_writes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "audit.db"
    _store(db, sqlite_journal_mode="wal").dispose()
    holder = sqlite3.connect(db)  # in WAL, open: the file cannot leave WAL now
    holder.execute("SELECT count(*) FROM decisions").fetchall()
    store = AuditStore(f"sqlite:///{db}", "test-key")
    try:
        with caplog.at_level(logging.WARNING, logger="cdsrules.audit"):
            store.record(make_record())
        assert "stays in wal journal mode" in caplog.text
        holder.close()
        store.engine.dispose()  # the next connection has the file to itself
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "truncate"
    finally:
        holder.close()
        store.dispose()


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


def immutable_supported(where: Path) -> None:
    """Skip (fail under CI) unless ``chattr +i`` works here: root, and a filesystem that has the flag."""
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        unavailable("making files immutable needs root and chattr (e2fsprogs)")
    probe = where / "chattr-probe"
    probe.write_text("x")
    try:
        _chattr("+i", probe)
    except subprocess.CalledProcessError as exc:
        unavailable(f"chattr +i is not supported on {where}: {exc.stderr.decode(errors='replace').strip()}")
    _chattr("-i", probe)
    probe.unlink()


@contextmanager
def immutable(directory: Path, prefix: str) -> Iterator[None]:
    """The database's files and their directory immutable (``chattr +i``), always undone."""
    paths = [*sorted(directory.glob(prefix + "*")), directory]
    _chattr("+i", *paths)
    try:
        yield
    finally:
        _chattr("-i", *paths)


def test_immutable_files_are_an_audit_error_and_writes_resume_after(tmp_path: Path) -> None:
    immutable_supported(tmp_path)
    store = _store(tmp_path / "audit.db")
    try:
        store.record(make_record())  # the journal file exists now, as in a running service
        with immutable(tmp_path, "audit.db"):
            with pytest.raises(AuditError):
                store.record(make_record())
            assert store.writable() is False
            assert store.ping() is True  # reads go on: the file is there, only unwritable
        after = make_record()
        store.record(after)
        assert store.writable() is True
        assert store.get(after.id) is not None
    finally:
        store.dispose()


def test_a_connection_opened_while_the_file_was_immutable_does_not_outlive_the_window(tmp_path: Path) -> None:
    # SQLite opens an unwritable file read-only and never reopens it; pooled, that connection
    # refused every write after the window until the process ended
    immutable_supported(tmp_path)
    store = _store(tmp_path / "audit.db")
    try:
        store.record(make_record())
        with immutable(tmp_path, "audit.db"):
            store.engine.dispose()  # the next checkout opens the file now, while it is immutable
            assert store.writable() is False
            with pytest.raises(AuditError):
                store.record(make_record())
        assert store.writable() is True
        after = make_record()
        store.record(after)
        assert store.get(after.id) is not None
    finally:
        store.dispose()


def test_a_nearly_full_disk_is_not_writable_although_a_one_page_commit_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # on a full disk a failed decision's journal frees a few kilobytes: the readiness probe's
    # one-page commit fits there, every decision does not
    store = _store(tmp_path / "audit.db")
    try:
        assert store.writable() is True
        real = os.statvfs

        def nearly_full(path: object) -> os.statvfs_result:
            st = real(path)  # type: ignore[arg-type]
            return os.statvfs_result((st.f_bsize, 4096, st.f_blocks, 16, 16, *tuple(st)[5:]))

        monkeypatch.setattr(os, "statvfs", nearly_full)
        with store.engine.connect() as conn:  # the one-page commit itself still succeeds
            conn.exec_driver_sql("PRAGMA user_version = 7")
            conn.commit()
        assert store.writable() is False
    finally:
        store.dispose()


def test_a_read_only_connection_the_open_time_check_missed_is_closed_after_its_first_refused_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the open-time check can race the file becoming writable again: SQLite opened it read-only,
    # the check a moment later found it writable, and the connection was pooled
    immutable_supported(tmp_path)
    store = _store(tmp_path / "audit.db")
    try:
        store.record(make_record())
        with immutable(tmp_path, "audit.db"):
            store.engine.dispose()
            monkeypatch.setattr("engine.audit.sqlite_setup.os.access", lambda *_a, **_k: True)
            assert store.ping() is True  # opens (read-only) and pools the connection
        monkeypatch.undo()
        with pytest.raises(AuditError):  # "attempt to write a readonly database": marked, then closed
            store.record(make_record())
        after = make_record()
        store.record(after)
        assert store.get(after.id) is not None
        assert store.writable() is True
    finally:
        store.dispose()
