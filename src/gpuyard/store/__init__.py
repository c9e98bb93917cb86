"""Persistence: SQLAlchemy 2 tables, sessions, repositories and Alembic migrations.

Repositories never commit; services own transactions. Dialect differences stay here.
"""
