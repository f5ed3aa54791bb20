"""Initial schema: device, search_space, architecture, measurement, accuracy, artifacts, API keys.

Revision ID: v0.1.0.a
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hwdb._models import UTCDateTime

revision = "v0.1.0.a"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("hardware", sa.Text(), nullable=False),
        sa.Column("runtime", sa.String(64), nullable=False),
        sa.Column("precision", sa.String(16), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=True),
        sa.Column("provenance", sa.String(32), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("name", name="uq_device_name"),
    )
    op.create_table(
        "search_space",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.UniqueConstraint("name", name="uq_search_space_name"),
    )
    op.create_table(
        "architecture",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "space_id",
            sa.Integer(),
            sa.ForeignKey("search_space.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("arch", sa.Text(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("benchmark_index", sa.Integer(), nullable=True),
        sa.UniqueConstraint("space_id", "arch", name="uq_architecture_space_arch"),
    )
    op.create_index("ix_architecture_hash", "architecture", ["hash"])
    op.create_table(
        "measurement",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "device_id",
            sa.Integer(),
            sa.ForeignKey("device.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "architecture_id",
            sa.Integer(),
            sa.ForeignKey("architecture.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("median", sa.Float(), nullable=False),
        sa.Column("mean", sa.Float(), nullable=True),
        sa.Column("std", sa.Float(), nullable=True),
        sa.Column("min", sa.Float(), nullable=True),
        sa.Column("p90", sa.Float(), nullable=True),
        sa.Column("n_runs", sa.Integer(), nullable=False),
        sa.Column("warmup", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(200), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("workload", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "device_id", "architecture_id", "metric", "protocol", name="uq_measurement_key"
        ),
    )
    op.create_table(
        "accuracy",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "architecture_id",
            sa.Integer(),
            sa.ForeignKey("architecture.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("dataset", sa.String(100), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.UniqueConstraint("architecture_id", "dataset", "metric", name="uq_accuracy_key"),
    )
    op.create_table(
        "predictor_artifact",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("space", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("kind", "space", "version", name="uq_predictor_artifact_key"),
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("name", name="uq_api_key_name"),
        sa.UniqueConstraint("key_hash", name="uq_api_key_hash"),
    )


def downgrade() -> None:
    for table in (
        "api_key",
        "predictor_artifact",
        "accuracy",
        "measurement",
        "architecture",
        "search_space",
        "device",
    ):
        op.drop_table(table)
