"""What both backends' migrations share: versions count from 1, each migration runs once and in order,
and a database already past this replayd's last migration is refused (an older replayd must not write
to a schema it does not know). Where the version is kept, and the lock that makes nodes starting
together migrate once, are each database's (``sqlite.py``, ``postgres.py``)."""

from __future__ import annotations

from collections.abc import Sequence


def pending_migrations(applied: int, migrations: Sequence[str]) -> list[tuple[int, str]]:
    """``(version, script)`` of each migration after version ``applied``, in order."""
    if applied > len(migrations):
        raise RuntimeError(f"index schema version {applied} is newer than this replayd ({len(migrations)})")
    return [(number + 1, migrations[number]) for number in range(applied, len(migrations))]
