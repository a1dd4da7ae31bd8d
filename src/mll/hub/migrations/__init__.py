"""Alembic migrations of the hub database; ``Store`` runs them on open.

Every stage may ship its own ``mll/<stage>/migrations/versions/`` directory; the store collects
them all, so a later stage adds tables without touching this package.
"""
