"""Record which API key uploaded a measurement (``measurement.uploaded_by``; null: local).

Revision ID: v0.1.0.c
Revises: v0.1.0.b
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0.1.0.c"
down_revision = "v0.1.0.b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("measurement", sa.Column("uploaded_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("measurement") as batch:
        batch.drop_column("uploaded_by")
