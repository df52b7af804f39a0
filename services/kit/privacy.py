"""Data-subject requests (GDPR access and erasure) across every service that holds user data.

Each service that stores data about a user provides a :class:`SubjectData`: how to export
everything it holds about a subject and how to erase it, inside a transaction it is given.
All services of a platform share one database (the operator creates one per platform), so one
call can export or erase in every service atomically: :func:`export_subject` and
:func:`erase_subject` run each store in the caller's transaction, and a failure in any store
rolls back all of them (never half an erasure).

The composition root (``services/platform.py``, or ``mobileplane serve``) lists the stores in
:data:`SUBJECT_STORES_STATE` on ``app.state``; the profiles service exposes the calls to users.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

#: Attribute of ``app.state`` holding the process's ``Sequence[SubjectData]``.
SUBJECT_STORES_STATE = "subject_stores"


class SubjectData(Protocol):
    """What one service holds about a data subject (a user id, the tokens' ``sub``)."""

    @property
    def service(self) -> str:
        """The service's name: the key of its part of an export."""
        ...

    async def export(self, session: AsyncSession, subject: str) -> dict[str, Any]:
        """Everything the service holds about ``subject``, as JSON-ready data."""
        ...

    async def erase(self, session: AsyncSession, subject: str) -> int:
        """Delete (or irreversibly anonymise) it; returns how many records were affected."""
        ...


async def export_subject(
    session: AsyncSession, stores: Sequence[SubjectData], subject: str
) -> dict[str, dict[str, Any]]:
    """Each service's export for ``subject``, keyed by service name."""
    return {store.service: await store.export(session, subject) for store in stores}


async def erase_subject(
    session: AsyncSession, stores: Sequence[SubjectData], subject: str
) -> dict[str, int]:
    """Erase ``subject`` in every store, in the caller's transaction; counts per service."""
    return {store.service: await store.erase(session, subject) for store in stores}


def get_subject_stores(request: Request) -> Sequence[SubjectData]:
    """FastAPI dependency: the data-subject stores the composition root registered."""
    stores = getattr(request.app.state, SUBJECT_STORES_STATE, None)
    if stores is None:
        raise RuntimeError(f"no {SUBJECT_STORES_STATE} on app.state: register them at startup")
    return list(stores)
