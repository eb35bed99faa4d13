"""The audit store: every decision is written here before the response leaves the service.

SQLAlchemy 2 keeps one model for SQLite (embedded default; its connection set-up, and why the
journal is not WAL by default, is ``engine.audit.sqlite_setup``) and PostgreSQL (psycopg 3). A
write that fails raises ``AuditError`` and is counted in ``cdsrules_audit_write_failures_total``;
the HTTP layer turns it into 503, so no advice is ever unrecorded.

PHI is minimised here, not at every caller: the patient id is kept only as an HMAC-SHA-256 keyed
by the deployment's secret, the input document only when ``store_inputs`` is on, and credentials
(the EHR's FHIR token) are stripped before anything is hashed or stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pydantic_core
from sqlalchemy import Table, create_engine, event, exists, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from engine.audit import migrate
from engine.audit.identifiers import patient_ids, scrub
from engine.audit.models import Base, DecisionCardRow, DecisionRow, DecisionRuleRow, FeedbackRow
from engine.audit.redact import without_secrets
from engine.audit.sqlite_setup import (
    JournalMode,
    close_unwritable_on_checkin,
    connection_setup,
    mark_read_only_connection,
)
from engine.errors import CdsRulesError, InputError, InputProblem
from engine.observability import metrics
from engine.observability.logs import bind

__all__ = [
    "AuditError",
    "AuditStore",
    "Base",
    "CardShown",
    "DecisionRecord",
    "DecisionRow",
    "DecisionRuleRow",
    "FeedbackRow",
    "normalise_url",
    "normalised_sha256",
]

log = logging.getLogger("cdsrules.audit")

# What a failed write can raise besides driver errors: a response that will not serialise, a disk
# that is full. All of them mean the decision is not on record.
_WRITE_ERRORS = (SQLAlchemyError, TypeError, ValueError, OSError)


class AuditError(CdsRulesError):
    """The audit store could not record a decision; the decision must not be returned."""


@dataclass(frozen=True)
class CardShown:
    """One card a decision showed, with the rule behind it (None for the "not checked" card)."""

    uuid: str
    severity: str
    topic: str
    has_suggestion: bool
    rule_id: str | None = None
    rule_version: str | None = None


@dataclass(frozen=True)
class DecisionRecord:
    id: str
    endpoint: str
    ruleset_version: str
    ruleset_digest: str
    drug: str | None
    rules_fired: list[dict[str, str]]
    response: dict[str, Any]
    latency_ms: float
    input_document: dict[str, Any]
    patient_ref: str | None = None
    hook: str | None = None
    hook_instance: str | None = None
    service_id: str | None = None
    cards: tuple[CardShown, ...] = ()


def normalised_sha256(document: Any) -> str:
    """SHA-256 of the input with sorted keys and no whitespace, so equal inputs hash equal."""
    canon = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canon.encode()).hexdigest()


def normalise_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` (as platforms hand them out) mean psycopg 3 here."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _utc(value: dt.datetime) -> dt.datetime:
    """Naive means UTC (SQLite hands back naive values); aware values are converted to UTC.

    An aware value whose UTC equivalent is outside the calendar (``9999-12-31T23:59:59-14:00``)
    is an ``InputError`` naming it, not an ``OverflowError``.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError as exc:
        raise InputError([InputProblem("/since", f"{value.isoformat()} is outside the representable range")]) from exc


# Free space below which a SQLite audit file is reported not writable. One decision's commit (its
# row with the stored answer, its cards and rules, and their rollback journal) is tens of
# kilobytes, and the per-call caps on orders bound the largest; 1 MiB leaves room for a burst of them
# across workers, while a disk that full is an outage the operator must see anyway.
SQLITE_MIN_FREE_BYTES = 1 << 20


class AuditStore:
    def __init__(
        self, url: str, hash_key: str, store_inputs: bool = False, sqlite_journal_mode: JournalMode = "truncate"
    ) -> None:
        self.url = normalise_url(url)
        self._key = hash_key.encode()
        self.store_inputs = store_inputs
        parsed = make_url(self.url)
        # A ping per checkout finds connections a server dropped; an embedded file has none to drop.
        kwargs: dict[str, Any] = {"pool_pre_ping": parsed.get_backend_name() != "sqlite"}
        if parsed.get_backend_name() == "sqlite":
            db = parsed.database
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            else:  # one shared connection, or every connection would see its own empty database
                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        # pydantic-core's encoder writes the same JSON as ``json.dumps`` at a fifth of the CPU; the
        # response document is the largest value in every audit row.
        kwargs["json_serializer"] = _to_json_text
        self.engine: SqlEngine = create_engine(self.url, **kwargs)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", connection_setup(sqlite_journal_mode))
            event.listen(self.engine, "handle_error", mark_read_only_connection)
            event.listen(self.engine.pool, "checkin", close_unwritable_on_checkin)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._insert_decision = insert(cast(Table, DecisionRow.__table__))
        self._insert_rules = insert(cast(Table, DecisionRuleRow.__table__))
        self._insert_cards = insert(cast(Table, DecisionCardRow.__table__))
        # SQLite has one writer at a time and its busy handler sleeps in growing steps (1, 2, 5, 10 ms
        # ...) while it waits, which is where the latency tails under load came from; queueing this
        # process's writers on a lock instead leaves only other processes to wait on the file lock.
        self._write_lock: AbstractContextManager[Any] = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else nullcontext()
        )

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @property
    def write_lock(self) -> AbstractContextManager[Any]:
        """Held around every write of this process (SQLite: one writer at a time; see ``__init__``)."""
        return self._write_lock

    # ---- schema -----------------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply pending Alembic migrations (safe to call from several processes at once)."""
        try:
            migrate.upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot migrate audit schema: {type(exc).__name__}: {_first_line(exc)}") from exc

    def create_schema(self) -> None:
        """Kept for callers of the first version: the schema now comes from the migrations."""
        self.migrate()

    # ---- writes -----------------------------------------------------------------------------

    def patient_hash(self, patient_ref: str | None) -> str | None:
        if not patient_ref:
            return None
        return hmac.new(self._key, patient_ref.encode(), hashlib.sha256).hexdigest()

    def record(self, rec: DecisionRecord) -> None:
        """Commit one decision or raise ``AuditError``; returns only once the row is durable."""
        started = time.perf_counter()
        now = dt.datetime.now(dt.UTC)
        document = without_secrets(rec.input_document)
        fired: dict[str, str] = {}
        for r in rec.rules_fired:
            fired.setdefault(r["rule_id"], r.get("version", ""))
        decision = {
            "id": rec.id,
            "created_at": now,
            "endpoint": rec.endpoint,
            "hook": rec.hook,
            "hook_instance": rec.hook_instance,
            "service_id": rec.service_id,
            "ruleset_version": rec.ruleset_version,
            "ruleset_digest": rec.ruleset_digest,
            "drug": rec.drug,
            "rules_fired": [{"rule_id": r["rule_id"], "version": r.get("version", "")} for r in rec.rules_fired],
            # without stored inputs, the stored answer names no patient either (the hash stands in)
            "response": rec.response
            if self.store_inputs
            else scrub(rec.response, patient_ids(document, rec.patient_ref)),
            "latency_ms": rec.latency_ms,
            "input_sha256": normalised_sha256(document),
            "patient_ref_hash": self.patient_hash(rec.patient_ref),
            "input_document": document if self.store_inputs else None,
        }
        rule_rows = [
            {"decision_id": rec.id, "rule_id": rid, "rule_version": ver, "created_at": now}
            for rid, ver in fired.items()
        ]
        card_rows = [
            {
                "card_uuid": c.uuid,
                "decision_id": rec.id,
                "created_at": now,
                "rule_id": c.rule_id,
                "rule_version": c.rule_version,
                "severity": c.severity,
                "topic": c.topic,
                "has_suggestion": c.has_suggestion,
                "ruleset_version": rec.ruleset_version,
            }
            for c in rec.cards
        ]
        try:
            # Core statements, not the ORM unit of work: one INSERT and one executemany in one
            # transaction cost under half the CPU, and the audit write is the largest part of a request.
            with self._write_lock, self.engine.begin() as conn:
                conn.execute(self._insert_decision, decision)
                if rule_rows:
                    conn.execute(self._insert_rules, rule_rows)
                if card_rows:
                    conn.execute(self._insert_cards, card_rows)
        except _WRITE_ERRORS as exc:
            metrics.AUDIT_FAILURES.labels("decision").inc()
            log.error(
                "audit write failed; advice withheld",
                extra={"decision_id": rec.id, "endpoint": rec.endpoint, "error": type(exc).__name__},
            )
            raise AuditError(f"audit write failed: {type(exc).__name__}") from exc
        elapsed = time.perf_counter() - started
        metrics.AUDIT_WRITE_SECONDS.labels("decision").observe(elapsed)
        metrics.observe_decision(rec.endpoint, fired, rec.response)
        for c in rec.cards:
            metrics.CARD_OUTCOMES.labels(c.rule_id or "", c.severity, "shown").inc()
        bind(decision_id=rec.id)
        log.info(
            "decision recorded",
            extra={
                "decision_id": rec.id,
                "endpoint": rec.endpoint,
                "hook": rec.hook,
                "hook_instance": rec.hook_instance,
                "ruleset_version": rec.ruleset_version,
                "rules_fired": sorted(fired),
                "latency_ms": rec.latency_ms,
            },
        )

    def record_feedback(self, service_id: str, item: dict[str, Any]) -> bool:
        """Store one feedback item against its card; False when it was already stored (idempotent).

        The natural key is (service, card uuid, outcome, outcomeTimestamp): an EHR that retries a
        feedback call stores nothing new, even when the retry's JSON differs in key order.
        """
        item = without_secrets(item)
        natural = {k: str(item.get(k, "")) for k in ("card", "outcome", "outcomeTimestamp")}
        key = normalised_sha256({"service": service_id, **natural})
        values = {
            "id": key,
            "card_uuid": natural["card"],
            "service_id": service_id,
            "outcome": natural["outcome"],
            "outcome_timestamp": natural["outcomeTimestamp"],
            "received_at": dt.datetime.now(dt.UTC),
            "item": item,
        }
        started = time.perf_counter()
        try:
            if self.backend in ("sqlite", "postgresql"):
                insert = sqlite_insert if self.backend == "sqlite" else pg_insert
                stmt = insert(FeedbackRow).values(**values).on_conflict_do_nothing(index_elements=["id"])
                with self.engine.begin() as conn:  # RETURNING: rowcount is not reliable across drivers
                    stored = conn.execute(stmt.returning(FeedbackRow.id)).first() is not None
            else:
                with self._sessions.begin() as session:
                    stored = session.get(FeedbackRow, key) is None
                    if stored:
                        session.add(FeedbackRow(**values))
        except IntegrityError:
            stored = False  # a concurrent writer stored the same item first
        except _WRITE_ERRORS as exc:
            metrics.AUDIT_FAILURES.labels("feedback").inc()
            raise AuditError(f"feedback write failed: {type(exc).__name__}") from exc
        metrics.AUDIT_WRITE_SECONDS.labels("feedback").observe(time.perf_counter() - started)
        if stored:
            self._count_outcome(natural["card"], natural["outcome"])
        return stored

    def _count_outcome(self, card_uuid: str, outcome: str) -> None:
        """The live counter of accepted/overridden cards; a lookup failure never fails the feedback."""
        stmt = select(DecisionCardRow.rule_id, DecisionCardRow.severity).where(DecisionCardRow.card_uuid == card_uuid)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(stmt).first()
        except SQLAlchemyError:
            return
        rule_id, severity = (row[0] or "", row[1]) if row is not None else ("", "unknown")
        metrics.CARD_OUTCOMES.labels(rule_id, severity, outcome).inc()

    def cards_of(self, decision_id: str) -> list[dict[str, Any]]:
        """The cards a decision showed, with their rules, as stored for analytics."""
        stmt = select(DecisionCardRow).where(DecisionCardRow.decision_id == decision_id)
        with Session(self.engine) as session:
            return [
                {
                    "card_uuid": r.card_uuid,
                    "rule_id": r.rule_id,
                    "rule_version": r.rule_version,
                    "severity": r.severity,
                    "topic": r.topic,
                    "has_suggestion": r.has_suggestion,
                }
                for r in session.scalars(stmt)
            ]

    # ---- reads ------------------------------------------------------------------------------

    def feedback_for(self, card_uuid: str) -> list[dict[str, Any]]:
        stmt = select(FeedbackRow).where(FeedbackRow.card_uuid == card_uuid).order_by(FeedbackRow.received_at)
        with Session(self.engine) as session:
            return [r.item for r in session.scalars(stmt)]

    def get(self, decision_id: str) -> dict[str, Any] | None:
        with Session(self.engine) as session:
            row = session.get(DecisionRow, decision_id)
            return _row_dict(row) if row else None

    def list(
        self,
        since: dt.datetime | None = None,
        rule_id: str | None = None,
        limit: int = 100,
        after: str | None = None,
        until: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Decisions oldest first; ``after`` is the last decision id of the previous page."""
        stmt = select(DecisionRow).order_by(DecisionRow.created_at, DecisionRow.id).limit(limit)
        if since is not None:
            stmt = stmt.where(DecisionRow.created_at >= _utc(since))
        if until is not None:
            stmt = stmt.where(DecisionRow.created_at < _utc(until))
        if rule_id:
            fired = (DecisionRuleRow.decision_id == DecisionRow.id) & (DecisionRuleRow.rule_id == rule_id)
            stmt = stmt.where(exists().where(fired))
        with Session(self.engine) as session:
            if after:
                anchor = session.get(DecisionRow, after)
                if anchor is None:
                    raise InputError(
                        [InputProblem("/after", f"no decision {after} to continue from", "unknown-cursor")]
                    )
                at = _utc(anchor.created_at)
                stmt = stmt.where(
                    (DecisionRow.created_at > at) | ((DecisionRow.created_at == at) & (DecisionRow.id > anchor.id))
                )
            return [_row_dict(r) for r in session.scalars(stmt)]

    def iter_decisions(
        self,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        rule_id: str | None = None,
        page: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """Every matching decision, oldest first, fetched a page at a time (for export)."""
        after: str | None = None
        while True:
            rows = self.list(since=since, until=until, rule_id=rule_id, limit=page, after=after)
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1]["decision_id"]

    def ping(self) -> bool:
        """The database answers and holds the audit tables (what readiness needs)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(DecisionRow.id).limit(1)).all()
            return True
        except SQLAlchemyError:
            return False

    def writable(self) -> bool:
        """A real commit succeeds now: a full disk or a read-only file or server answers False.

        ``ping`` only reads, and reads keep working on a full disk while every decision fails;
        readiness must fail with them, or load balancers keep sending traffic to a node that
        can give no advice. SQLite: rewrite the file header's ``user_version`` (unused by
        Alembic), a one-page commit, and at least ``SQLITE_MIN_FREE_BYTES`` free beside the
        file: a one-page commit still fits in the few kilobytes a failed transaction's journal
        frees on a full disk, while every decision (rows, cards, rules, the journal of all of
        them) does not, and readiness said "ok" through thousands of 503s. PostgreSQL: the
        session is not read-only (a hot standby or ``default_transaction_read_only``); a full
        disk there is the server's to report.
        """
        try:
            if self.engine.dialect.name == "sqlite":
                with self._write_lock, self.engine.connect() as conn:
                    conn.exec_driver_sql(f"PRAGMA user_version = {int(time.time()) % 1_000_000}")
                    conn.commit()
                return self._sqlite_free_bytes() >= SQLITE_MIN_FREE_BYTES
            with self.engine.connect() as conn:
                read_only = conn.exec_driver_sql("SHOW transaction_read_only").scalar()
            return str(read_only).lower() != "on"
        except (SQLAlchemyError, OSError):
            return False

    def _sqlite_free_bytes(self) -> int:
        """Bytes free to this process on the SQLite file's filesystem (unbounded for in-memory)."""
        db = make_url(self.url).database
        if not db or db == ":memory:":
            return SQLITE_MIN_FREE_BYTES
        st = os.statvfs(Path(db).resolve().parent)
        return st.f_bavail * st.f_frsize

    def count(self) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(DecisionRow)) or 0)

    def dispose(self) -> None:
        self.engine.dispose()


def _to_json_text(value: Any) -> str:
    return pydantic_core.to_json(value).decode()


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""


def _row_dict(row: DecisionRow) -> dict[str, Any]:
    return {
        "decision_id": row.id,
        "created_at": _utc(row.created_at).isoformat(),
        "endpoint": row.endpoint,
        "hook": row.hook,
        "hook_instance": row.hook_instance,
        "service_id": row.service_id,
        "ruleset": {"version": row.ruleset_version, "digest": row.ruleset_digest},
        "drug": row.drug,
        "rules_fired": row.rules_fired,
        "response": row.response,
        "latency_ms": row.latency_ms,
        "input_sha256": row.input_sha256,
        "patient_ref_hash": row.patient_ref_hash,
        "input_document": row.input_document,
    }
