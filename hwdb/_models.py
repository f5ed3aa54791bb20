"""SQLAlchemy 2.0 declarative models of the hardware-measurement database.

Timestamps are stored timezone-aware (``DateTime(timezone=True)``); SQLite keeps no zone, so
:class:`UTCDateTime` writes UTC and tags values read back as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AccuracyModel",
    "ApiKeyModel",
    "ArchitectureModel",
    "Base",
    "DeviceModel",
    "MeasurementModel",
    "PredictorArtifactModel",
    "SearchSpaceModel",
    "UTCDateTime",
    "utcnow",
]


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always returns aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass a timezone-aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of all hwdb tables."""

    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class DeviceModel(Base):
    """A device (unique ``name``) and how its numbers were obtained."""

    __tablename__ = "device"
    __table_args__ = (UniqueConstraint("name", name="uq_device_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    family: Mapped[str] = mapped_column(String(32))
    hardware: Mapped[str] = mapped_column(Text, default="")
    runtime: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(16))
    batch_size: Mapped[int] = mapped_column(Integer)
    threads: Mapped[int | None] = mapped_column(Integer, nullable=True)
    provenance: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text, default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The API key that registered it through the service (null: locally or imported).
    registered_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class SearchSpaceModel(Base):
    """A search space known to the database."""

    __tablename__ = "search_space"
    __table_args__ = (UniqueConstraint("name", name="uq_search_space_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class ArchitectureModel(Base):
    """An architecture: canonical string of its space, content hash, benchmark index."""

    __tablename__ = "architecture"
    __table_args__ = (
        UniqueConstraint("space_id", "arch", name="uq_architecture_space_arch"),
        Index("ix_architecture_hash", "hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("search_space.id", ondelete="CASCADE"))
    arch: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(64))
    benchmark_index: Mapped[int | None] = mapped_column(Integer, nullable=True)


class MeasurementModel(Base):
    """One summarised measurement of one metric of one architecture on one device."""

    __tablename__ = "measurement"
    __table_args__ = (
        UniqueConstraint(
            "device_id", "architecture_id", "metric", "protocol", name="uq_measurement_key"
        ),
        Index("ix_measurement_architecture", "architecture_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architecture.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(64))
    median: Mapped[float] = mapped_column(Float)
    mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    std: Mapped[float | None] = mapped_column(Float, nullable=True)
    min: Mapped[float | None] = mapped_column(Float, nullable=True)
    p90: Mapped[float | None] = mapped_column(Float, nullable=True)
    n_runs: Mapped[int] = mapped_column(Integer)
    warmup: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(200))
    environment: Mapped[dict[str, Any]] = mapped_column(JSON)
    workload: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    uploaded_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class AccuracyModel(Base):
    """An accuracy record of an architecture on a dataset/task."""

    __tablename__ = "accuracy"
    __table_args__ = (
        UniqueConstraint("architecture_id", "dataset", "metric", name="uq_accuracy_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architecture.id", ondelete="CASCADE"))
    dataset: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(Text)


class PredictorArtifactModel(Base):
    """Serialized predictor weights with their training summary and metrics."""

    __tablename__ = "predictor_artifact"
    __table_args__ = (
        UniqueConstraint("kind", "space", "version", name="uq_predictor_artifact_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    space: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(100))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKeyModel(Base):
    """An API key of the REST service (only its SHA-256 hash is stored)."""

    __tablename__ = "api_key"
    __table_args__ = (
        UniqueConstraint("name", name="uq_api_key_name"),
        UniqueConstraint("key_hash", name="uq_api_key_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
