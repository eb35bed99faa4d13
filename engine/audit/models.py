"""Audit tables, one SQLAlchemy 2 model for SQLite and PostgreSQL.

The Alembic migrations in ``alembic/versions`` create exactly these tables; a test compares the
migrated database with this metadata on both backends, so the two cannot drift apart.

``decision_rules`` repeats each fired rule id as its own row so "every decision rule X shaped since
June" is an indexed lookup months later, not a scan of JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class DecisionRow(Base):
    """One answer the service gave: what it said, which rules said it, and a fingerprint of the input."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    endpoint: Mapped[str] = mapped_column(String(64))
    hook: Mapped[str | None] = mapped_column(String(64))
    hook_instance: Mapped[str | None] = mapped_column(String(128))
    service_id: Mapped[str | None] = mapped_column(String(128))
    ruleset_version: Mapped[str] = mapped_column(String(32))
    ruleset_digest: Mapped[str] = mapped_column(String(80))
    drug: Mapped[str | None] = mapped_column(String(64))
    rules_fired: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    input_sha256: Mapped[str] = mapped_column(String(64))
    patient_ref_hash: Mapped[str | None] = mapped_column(String(64))
    input_document: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (
        Index("ix_decisions_created_id", "created_at", "id"),
        Index("ix_decisions_patient_ref_hash", "patient_ref_hash"),
    )


class DecisionRuleRow(Base):
    """A rule (id and version) that fired in a decision; the index behind ``?rule_id=``."""

    __tablename__ = "decision_rules"

    decision_id: Mapped[str] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    rule_version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_decision_rules_rule_created", "rule_id", "created_at", "decision_id"),)


class FeedbackRow(Base):
    """CDS Hooks feedback on a card, stored once per (service, card, outcome, outcome timestamp)."""

    __tablename__ = "feedback"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the natural key
    card_uuid: Mapped[str] = mapped_column(String(64), index=True)
    service_id: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_timestamp: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    item: Mapped[dict[str, Any]] = mapped_column(JSON)


class DecisionCardRow(Base):
    """A CDS Hooks card a decision showed: the join from feedback (by card uuid) to rule and severity.

    ``rule_id`` is the rule that produced the card (the first dose rule for a dosing card), None
    for the "not checked" card, which no rule owns.
    """

    __tablename__ = "decision_cards"

    card_uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    decision_id: Mapped[str] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    rule_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    rule_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    severity: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(64))
    has_suggestion: Mapped[bool] = mapped_column(Boolean)
    ruleset_version: Mapped[str] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_decision_cards_created", "created_at", "rule_id"),
        Index("ix_decision_cards_decision", "decision_id"),
    )


class SeenTokenRow(Base):
    """A client JWT's ``jti`` already accepted, kept until its ``exp`` (epoch seconds) has passed.

    Shared by every worker and replica on this database, so a captured token is accepted once in
    all of them (``engine.audit.seen_tokens``). The primary key is the atomic check: a second
    insert of the same (iss, jti) fails.
    """

    __tablename__ = "seen_tokens"

    iss: Mapped[str] = mapped_column(Text, primary_key=True)
    jti: Mapped[str] = mapped_column(String(256), primary_key=True)
    exp: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_seen_tokens_exp", "exp"),)
