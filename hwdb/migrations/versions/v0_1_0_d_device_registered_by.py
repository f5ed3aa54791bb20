"""Record which API key registered a device through the service (``device.registered_by``;
null: registered locally or imported). Only that key may change the device through the
service.

Revision ID: v0.1.0.d
Revises: v0.1.0.c
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0.1.0.d"
down_revision = "v0.1.0.c"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("device", sa.Column("registered_by", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device") as batch:
        batch.drop_column("registered_by")
