"""The audit store: every decision is written here before the response leaves the service.

SQLAlchemy 2 keeps one model for SQLite (embedded default, WAL) and PostgreSQL. A write that fails
raises ``AuditError``; the HTTP layer turns that into 503, so no advice is ever unrecorded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Index, String, Text, create_engine, event, select
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from engine.errors import CdsRulesError


class AuditError(CdsRulesError):
    """The audit store could not record a decision; the decision must not be returned."""


class Base(DeclarativeBase):
    pass


class DecisionRow(Base):
    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    hook: Mapped[str | None] = mapped_column(String(64))
    hook_instance: Mapped[str | None] = mapped_column(String(128))
    service_id: Mapped[str | None] = mapped_column(String(128))
    ruleset_version: Mapped[str] = mapped_column(String(32))
    ruleset_digest: Mapped[str] = mapped_column(String(80))
    drug: Mapped[str | None] = mapped_column(String(64))
    rules_fired: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    rule_ids: Mapped[str] = mapped_column(Text)  # " id1 id2 " for portable LIKE filtering
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    input_sha256: Mapped[str] = mapped_column(String(64))
    patient_ref_hash: Mapped[str | None] = mapped_column(String(64))
    input_document: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_decisions_created_id", "created_at", "id"),)


class FeedbackRow(Base):
    """CDS Hooks feedback on a card, stored once per (card, outcome, timestamp)."""

    __tablename__ = "feedback"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the normalised item
    card_uuid: Mapped[str] = mapped_column(String(64), index=True)
    service_id: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_timestamp: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    item: Mapped[dict[str, Any]] = mapped_column(JSON)


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


def normalised_sha256(document: dict[str, Any]) -> str:
    """SHA-256 of the input with sorted keys and no whitespace, so equal inputs hash equal."""
    canon = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canon.encode()).hexdigest()


class AuditStore:
    def __init__(self, url: str, hash_key: str, store_inputs: bool = False) -> None:
        self.url = url
        self._key = hash_key.encode()
        self.store_inputs = store_inputs
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.engine: SqlEngine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self) -> None:
        try:
            Base.metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise AuditError(f"cannot create audit schema: {type(exc).__name__}") from exc

    def patient_hash(self, patient_ref: str | None) -> str | None:
        if not patient_ref:
            return None
        return hmac.new(self._key, patient_ref.encode(), hashlib.sha256).hexdigest()

    def record(self, rec: DecisionRecord) -> None:
        row = DecisionRow(
            id=rec.id,
            created_at=dt.datetime.now(dt.UTC),
            endpoint=rec.endpoint,
            hook=rec.hook,
            hook_instance=rec.hook_instance,
            service_id=rec.service_id,
            ruleset_version=rec.ruleset_version,
            ruleset_digest=rec.ruleset_digest,
            drug=rec.drug,
            rules_fired=rec.rules_fired,
            rule_ids=" " + " ".join(r["rule_id"] for r in rec.rules_fired) + " ",
            response=rec.response,
            latency_ms=rec.latency_ms,
            input_sha256=normalised_sha256(rec.input_document),
            patient_ref_hash=self.patient_hash(rec.patient_ref),
            input_document=rec.input_document if self.store_inputs else None,
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except SQLAlchemyError as exc:
            raise AuditError(f"audit write failed: {type(exc).__name__}") from exc

    def record_feedback(self, service_id: str, item: dict[str, Any]) -> bool:
        """Store one feedback item; False when the same item was already stored (idempotent)."""
        key = normalised_sha256({"service": service_id, "item": item})
        row = FeedbackRow(
            id=key,
            card_uuid=str(item.get("card", "")),
            service_id=service_id,
            outcome=str(item.get("outcome", "")),
            outcome_timestamp=str(item.get("outcomeTimestamp", "")),
            received_at=dt.datetime.now(dt.UTC),
            item=item,
        )
        try:
            with self._sessions.begin() as session:
                if session.get(FeedbackRow, key) is not None:
                    return False
                session.add(row)
            return True
        except IntegrityError:
            return False  # a concurrent writer stored the same item first
        except SQLAlchemyError as exc:
            raise AuditError(f"feedback write failed: {type(exc).__name__}") from exc

    def feedback_for(self, card_uuid: str) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            rows = session.scalars(select(FeedbackRow).where(FeedbackRow.card_uuid == card_uuid))
            return [r.item for r in rows]

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
    ) -> list[dict[str, Any]]:
        stmt = select(DecisionRow).order_by(DecisionRow.created_at, DecisionRow.id).limit(limit)
        if since is not None:
            stmt = stmt.where(DecisionRow.created_at >= since)
        if rule_id:
            stmt = stmt.where(DecisionRow.rule_ids.contains(f" {rule_id} "))
        if after:
            with Session(self.engine) as session:
                anchor = session.get(DecisionRow, after)
            if anchor is not None:
                stmt = stmt.where(
                    (DecisionRow.created_at > anchor.created_at)
                    | ((DecisionRow.created_at == anchor.created_at) & (DecisionRow.id > anchor.id))
                )
        with Session(self.engine) as session:
            return [_row_dict(r) for r in session.scalars(stmt)]

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except SQLAlchemyError:
            return False

    def count(self) -> int:
        from sqlalchemy import func

        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(DecisionRow)) or 0)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _row_dict(row: DecisionRow) -> dict[str, Any]:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
    return {
        "decision_id": row.id,
        "created_at": created.isoformat(),
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
