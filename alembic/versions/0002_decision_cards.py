"""Cards shown per decision, so CDS Hooks feedback (keyed by card uuid) joins to a rule and severity.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "decision_cards",
        sa.Column("card_uuid", sa.String(64), primary_key=True),
        sa.Column(
            "decision_id",
            sa.String(36),
            sa.ForeignKey("decisions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=True),
        sa.Column("rule_version", sa.String(32), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("has_suggestion", sa.Boolean(), nullable=False),
        sa.Column("ruleset_version", sa.String(32), nullable=False),
    )
    op.create_index("ix_decision_cards_created", "decision_cards", ["created_at", "rule_id"])
    op.create_index("ix_decision_cards_decision", "decision_cards", ["decision_id"])


def downgrade() -> None:
    op.drop_table("decision_cards")
