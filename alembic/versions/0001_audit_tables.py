"""Audit tables: decisions, the rules that fired in each, and CDS Hooks feedback.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("hook", sa.String(64), nullable=True),
        sa.Column("hook_instance", sa.String(128), nullable=True),
        sa.Column("service_id", sa.String(128), nullable=True),
        sa.Column("ruleset_version", sa.String(32), nullable=False),
        sa.Column("ruleset_digest", sa.String(80), nullable=False),
        sa.Column("drug", sa.String(64), nullable=True),
        sa.Column("rules_fired", sa.JSON(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("input_sha256", sa.String(64), nullable=False),
        sa.Column("patient_ref_hash", sa.String(64), nullable=True),
        sa.Column("input_document", sa.JSON(), nullable=True),
    )
    op.create_index("ix_decisions_created_id", "decisions", ["created_at", "id"])
    op.create_index("ix_decisions_patient_ref_hash", "decisions", ["patient_ref_hash"])
    op.create_table(
        "decision_rules",
        sa.Column(
            "decision_id",
            sa.String(36),
            sa.ForeignKey("decisions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("rule_id", sa.String(128), primary_key=True),
        sa.Column("rule_version", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_decision_rules_rule_created", "decision_rules", ["rule_id", "created_at", "decision_id"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("card_uuid", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_timestamp", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("item", sa.JSON(), nullable=False),
    )
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("decision_rules")
    op.drop_table("decisions")
