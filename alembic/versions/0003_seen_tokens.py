"""The client JWT ids already accepted, shared by every worker (``CDSRULES_REPLAY_STORE=database``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "seen_tokens",
        sa.Column("iss", sa.Text(), primary_key=True),
        sa.Column("jti", sa.String(256), primary_key=True),
        sa.Column("exp", sa.Float(), nullable=False),
    )
    op.create_index("ix_seen_tokens_exp", "seen_tokens", ["exp"])


def downgrade() -> None:
    op.drop_table("seen_tokens")
