"""Alembic migration environment of :mod:`hwdb` (package data, run programmatically)."""
