"""Index measurements by architecture (latency tables join on it).

Revision ID: v0.1.0.b
Revises: v0.1.0.a
"""

from __future__ import annotations

from alembic import op

revision = "v0.1.0.b"
down_revision = "v0.1.0.a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_measurement_architecture", "measurement", ["architecture_id"])


def downgrade() -> None:
    op.drop_index("ix_measurement_architecture", table_name="measurement")
