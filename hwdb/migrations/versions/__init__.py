"""Alembic revisions of :mod:`hwdb`, named after releases (``v0.1.0.a``, ...)."""
