"""How a client's write merges into the server's row: per-field last-writer-wins, or a resolver.

The server is authoritative; a client's mutation is a *proposal*. Each field of a row keeps the
hybrid-logical-clock timestamp (:mod:`.hlc`) of the write that set it, and by default a
proposed field value wins only if its timestamp is later (**last writer wins, per field**: two
devices editing different fields of one row both keep their edit). Some fields must not lose
writes at all, so a table may name a **resolver** per column:

- ``lww`` (the default) — the later timestamp wins; the loser is reported back to its client.
- ``counter`` — the client sends a delta (``{"$inc": n}``); deltas add up, whatever the order.
- ``set`` — the client sends ``{"$add": [...], "$remove": [...]}``; the server's list is a set
  (add-wins on a tie of the same timestamp), kept sorted so every replica agrees.
- ``server`` — clients cannot write the field (it is the server's: counts, moderation flags).

Deletes are tombstones with a timestamp: a delete hides every field written before it, in
whatever order the writes arrive; a field written after it (an edit on a device that had not
seen the delete yet) is kept, so the row lives on with those fields and the deleting client is
told. Fields written before a delete that arrive after it lose.

Every overridden client write is returned as an :class:`Override`, so the sync service can
report it to the client that made it. Everything here is pure and deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mobileplane.services.sync.hlc import Timestamp

JsonValue = Any


class MergeError(ValueError):
    """A mutation that cannot be applied as written (a client bug): reported, never guessed."""


class Op(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class Row:
    """The server's state of one row: values, the clock of each field, and a tombstone.

    A delete leaves a tombstone (no values, the delete's clock); a write timestamped after it
    brings the row back with that write's fields only, and writes timestamped before it lose.
    """

    values: Mapping[str, JsonValue] = field(default_factory=dict)
    clocks: Mapping[str, str] = field(default_factory=dict)  # encoded timestamps
    deleted_at: str | None = None  # encoded timestamp of the last delete

    def visible(self) -> dict[str, JsonValue]:
        if self.deleted_at is None:
            return dict(self.values)
        cutoff = self.deleted_at
        return {c: v for c, v in self.values.items() if self.clocks.get(c, "") > cutoff}

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None and not self.visible()

    def latest(self) -> str | None:
        stamps = [*self.clocks.values(), *([self.deleted_at] if self.deleted_at else [])]
        return max(stamps) if stamps else None


@dataclass(frozen=True)
class Override:
    """A field of a client's write that the server did not take, and what it kept instead."""

    column: str
    client_value: JsonValue
    server_value: JsonValue
    reason: str


@dataclass(frozen=True)
class Merged:
    row: Row
    changed: tuple[str, ...]  # columns whose value changed
    overrides: tuple[Override, ...]
    existed: bool  # the row was live before


Resolver = Callable[[JsonValue, JsonValue, str | None, str], tuple[JsonValue, Override | None]]
"""``(server_value, proposed, server_clock, proposed_clock) -> (new value, override)``;
``proposed`` is what the client sent for the column (a value or an operator object)."""


def _lww(server: JsonValue, proposed: JsonValue, server_clock: str | None, clock: str) -> Any:
    if isinstance(proposed, dict) and any(str(k).startswith("$") for k in proposed):
        raise MergeError("a last-writer-wins column takes a plain value, not an operator")
    if server_clock is None or clock > server_clock:
        return proposed, None
    if proposed == server:
        return server, None
    return server, Override("", proposed, server, "a later write won (last writer wins)")


def _counter(server: JsonValue, proposed: JsonValue, _sc: str | None, _c: str) -> Any:
    if not (isinstance(proposed, dict) and set(proposed) == {"$inc"}):
        raise MergeError('a counter column takes {"$inc": <integer>}')
    delta = proposed["$inc"]
    if not isinstance(delta, int) or isinstance(delta, bool):
        raise MergeError('a counter column takes {"$inc": <integer>}')
    base = server if isinstance(server, int) and not isinstance(server, bool) else 0
    return base + delta, None


def _set(server: JsonValue, proposed: JsonValue, _sc: str | None, _c: str) -> Any:
    if not (isinstance(proposed, dict) and proposed and set(proposed) <= {"$add", "$remove"}):
        raise MergeError('a set column takes {"$add": [...], "$remove": [...]}')
    add, remove = proposed.get("$add", []), proposed.get("$remove", [])
    if not isinstance(add, list) or not isinstance(remove, list):
        raise MergeError('"$add" and "$remove" must be lists')
    for item in (*add, *remove):
        if not isinstance(item, str | int | float) or isinstance(item, bool):
            raise MergeError("set members must be strings or numbers")
    members = set(server) if isinstance(server, list) else set()
    members = (members - set(remove)) | set(add)  # add wins over remove in one write
    return sorted(members, key=lambda m: (isinstance(m, str), m)), None


def _server_only(server: JsonValue, proposed: JsonValue, _sc: str | None, _c: str) -> Any:
    return server, Override("", proposed, server, "the server owns this column")


RESOLVERS: dict[str, Resolver] = {
    "lww": _lww,
    "counter": _counter,
    "set": _set,
    "server": _server_only,
}


def merge(
    row: Row | None,
    op: Op,
    values: Mapping[str, JsonValue],
    timestamp: Timestamp,
    resolvers: Mapping[str, str],
) -> Merged:
    """Apply one client mutation to ``row`` (``None``: the server has no such row).

    ``resolvers`` maps column → resolver name; unnamed columns are ``lww``. Raises
    :class:`MergeError` for a malformed mutation; a well-formed write that loses (to a later
    write, a later delete, or because the row does not exist) comes back as overrides.
    """
    clock = timestamp.encode()
    current = row or Row()
    existed = row is not None and not current.deleted
    if op is Op.DELETE:
        if values:
            raise MergeError("a delete carries no values")
        cutoff = max(clock, current.deleted_at) if current.deleted_at else clock
        # The delete hides every field written before it, whatever order writes arrive in;
        # fields written after it (on a device that had not seen it) stay.
        survivors = {c: v for c, v in current.visible().items() if current.clocks[c] > cutoff}
        tombstone = Row(survivors, {c: current.clocks[c] for c in survivors}, cutoff)
        removed = tuple(sorted(set(current.visible()) - set(survivors)))
        overrides: tuple[Override, ...] = ()
        if survivors:
            reason = "written after this delete (last writer wins): the row stays"
            overrides = tuple(Override(c, None, v, reason) for c, v in sorted(survivors.items()))
        return Merged(tombstone, removed, overrides, existed)

    if op is Op.UPDATE and not existed:
        reason = "the row does not exist (it was deleted, or never synced)"
        return Merged(
            current,
            (),
            tuple(Override(c, values[c], None, reason) for c in sorted(values)),
            existed,
        )

    visible = current.visible()
    new_values = dict(visible)
    new_clocks = {c: current.clocks[c] for c in visible}
    changed: list[str] = []
    lost: list[Override] = []
    for column in sorted(values):
        name = resolvers.get(column, "lww")
        resolver = RESOLVERS.get(name)
        if resolver is None:
            raise MergeError(f"column {column!r} has an unknown resolver {name!r}")
        if current.deleted_at is not None and clock <= current.deleted_at:
            reason = "the row was deleted after this write"
            lost.append(Override(column, values[column], None, reason))
            continue
        old = visible.get(column)
        old_clock = current.clocks.get(column) if column in visible else None
        value, override = resolver(old, values[column], old_clock, clock)
        if override is not None:
            lost.append(
                Override(column, override.client_value, override.server_value, override.reason)
            )
            continue
        if column not in visible or value != old:
            changed.append(column)
        new_values[column] = value
        new_clocks[column] = clock if old_clock is None or clock > old_clock else old_clock
    return Merged(
        Row(new_values, new_clocks, current.deleted_at), tuple(changed), tuple(lost), existed
    )
