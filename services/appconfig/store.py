"""The app-config service's repository: reads and idempotent upserts, in the caller's
transaction (the kit commits at the request boundary)."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from mobileplane.services.appconfig.document import HaltedRow, KillSwitchRow, PlatformRow
from mobileplane.services.appconfig.models import halted, kill_switches, platforms


async def load(
    session: AsyncSession, app: str
) -> tuple[list[PlatformRow], list[HaltedRow], list[KillSwitchRow]]:
    p = await session.execute(select(platforms).where(platforms.c.app == app))
    h = await session.execute(select(halted).where(halted.c.app == app))
    k = await session.execute(select(kill_switches).where(kill_switches.c.app == app))
    return (
        [PlatformRow(r.platform, r.latest_version, r.min_supported_version) for r in p],
        [HaltedRow(r.platform, r.version, r.reason, r.halted_at) for r in h],
        [KillSwitchRow(r.name, r.enabled, r.message) for r in k],
    )


async def set_versions(
    session: AsyncSession,
    app: str,
    platform: str,
    values: dict[str, str | None],
) -> None:
    """Upsert the given columns (``latest_version``, ``min_supported_version``) only."""
    stmt = insert(platforms).values(app=app, platform=platform, **values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[platforms.c.app, platforms.c.platform],
            set_={**{k: stmt.excluded[k] for k in values}, "updated_at": func.now()},
        )
    )


async def halt(
    session: AsyncSession, app: str, platform: str, version: str, reason: str, by: str
) -> bool:
    """Mark ``version`` halted; False if it already was (the first reason is kept)."""
    result = await session.execute(
        insert(halted)
        .values(app=app, platform=platform, version=version, reason=reason, halted_by=by)
        .on_conflict_do_nothing()
        .returning(halted.c.version)
    )
    return result.first() is not None


async def unhalt(session: AsyncSession, app: str, platform: str, version: str) -> bool:
    result = await session.execute(
        delete(halted)
        .where(halted.c.app == app, halted.c.platform == platform, halted.c.version == version)
        .returning(halted.c.version)
    )
    return result.first() is not None


async def set_kill_switch(
    session: AsyncSession, app: str, name: str, enabled: bool, message: str
) -> None:
    stmt = insert(kill_switches).values(app=app, name=name, enabled=enabled, message=message)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[kill_switches.c.app, kill_switches.c.name],
            set_={"enabled": enabled, "message": message, "updated_at": func.now()},
        )
    )


async def delete_kill_switch(session: AsyncSession, app: str, name: str) -> bool:
    result = await session.execute(
        delete(kill_switches)
        .where(kill_switches.c.app == app, kill_switches.c.name == name)
        .returning(kill_switches.c.name)
    )
    return result.first() is not None
