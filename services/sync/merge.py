"""How a client's write merges into the server's row, so that every order of arrival agrees.

The server is authoritative; a client's mutation is a *proposal* stamped with a hybrid
logical clock (:mod:`.hlc`). Mutations of different devices reach the server in any order
(one device is offline for a week, another syncs every minute), so the rule below makes the
server's row a **function of the set of writes it has received, not of their order**:
merging is commutative, associative and idempotent. docs/sync-protocol.md §4 states the same
rule for SDK authors.

**State of a row.** Each field keeps the timestamp of the latest write that set it — kept even
when that write did not change the value, or a later write with the same value would lose to
an earlier one with another value. A row also keeps one **delete marker**: the *latest*
timestamp of every delete it has received (``max``, so a late, older delete never moves it
back). A field is visible when its timestamp is after the marker.

**Writes, per column resolver:**

- ``lww`` (the default) — the later timestamp wins. Equal timestamps (two writes stamped alike,
  which honest clocks never do) are broken by the canonical JSON of the value, so both orders
  agree. A write at or before the delete marker loses.
- ``counter`` — the client sends a delta (``{"$inc": n}``); the value is the sum of every
  delta received, whatever the order — a delta stamped before a delete included. A delete
  hides the counter (its sum is kept, never reset: "reset on delete" cannot be
  order-independent); a delta stamped after the delete shows it again, with the total.
- ``set`` — the client sends ``{"$add": [...], "$remove": [...]}``. Each member keeps the
  timestamps of its latest add and latest remove; it is in the set when its add is later than
  its remove (an add wins a tie: "add wins" within one write) and later than the delete marker.
  The list is kept sorted so every replica agrees.
- ``server`` — clients cannot write the field (it is the server's: counts, moderation flags).

**Inserts, updates and deletes.** An ``insert`` and an ``update`` both write the given fields;
they differ only for a row the server has no record of at all: an insert creates it, an update
is refused (the client can only know a row that the server has, or had: a row it created
itself is inserted first by its own ordered queue). An update of a *deleted* row is a write
like any other: stamped after the delete, its fields bring the row back (exactly as if it had
arrived before the delete); stamped before, it loses. A ``delete`` moves the marker forward
and drops what it hides (values of deleted rows do not linger on the server; counters keep
their sum, sets the member timestamps a late write must still be compared with).

Every overridden client write is returned as an :class:`Override`, so the sync service can
report it to the client that made it. Everything here is pure and deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mobileplane.services.sync.hlc import Timestamp

JsonValue = Any

RESOLVERS: tuple[str, ...] = ("lww", "counter", "set", "server")
"""The column resolvers a sync schema may name (see the module docstring)."""

Element = tuple[str | None, str | None]
"""A set member's state: the encoded timestamps of its latest add and latest remove."""

Elements = Mapping[str, Mapping[str, Element]]
"""Set column → member key (the member's JSON text) → its :data:`Element`."""

_MISSING = object()


class MergeError(ValueError):
    """A mutation that cannot be applied as written (a client bug): reported, never guessed."""


class Op(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class Row:
    """The server's state of one row: field values and clocks, set members, the delete marker.

    ``values`` may hold a field that the marker hides (a counter's sum); :meth:`visible` is
    what clients see. ``elements`` maps each set column to ``{member key: (added, removed)}``,
    the member key being the member's JSON text (so ``1`` and ``"1"`` stay apart).
    """

    values: Mapping[str, JsonValue] = field(default_factory=dict)
    clocks: Mapping[str, str] = field(default_factory=dict)  # encoded timestamps
    deleted_at: str | None = None  # the latest delete's encoded timestamp
    elements: Elements = field(default_factory=dict)

    def visible(self) -> dict[str, JsonValue]:
        if self.deleted_at is None:
            return dict(self.values)
        cutoff = self.deleted_at
        return {c: v for c, v in self.values.items() if self.clocks.get(c, "") > cutoff}

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None and not self.visible()


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
    changed: tuple[str, ...]  # columns whose visible value changed
    overrides: tuple[Override, ...]
    existed: bool  # the row was live before


LATER_WRITE_WON = "a later write won (last writer wins)"
DELETED_AFTER = "the row was deleted after this write"
SERVER_OWNED = "the server owns this column"
NO_SUCH_ROW = "the row does not exist (it was never synced, or its delete was purged)"
WRITTEN_AFTER_DELETE = "written after this delete (last writer wins): the row stays"


def validate(resolver: str, proposed: JsonValue) -> None:
    """Raise :class:`MergeError` unless ``proposed`` is a well-formed value for ``resolver``."""
    if resolver == "lww":
        if isinstance(proposed, dict) and any(str(k).startswith("$") for k in proposed):
            raise MergeError("a last-writer-wins column takes a plain value, not an operator")
    elif resolver == "counter":
        delta = proposed.get("$inc") if isinstance(proposed, dict) else None
        if not (isinstance(proposed, dict) and set(proposed) == {"$inc"}) or (
            not isinstance(delta, int) or isinstance(delta, bool)
        ):
            raise MergeError('a counter column takes {"$inc": <integer>}')
    elif resolver == "set":
        if not (isinstance(proposed, dict) and proposed and set(proposed) <= {"$add", "$remove"}):
            raise MergeError('a set column takes {"$add": [...], "$remove": [...]}')
        add, remove = proposed.get("$add", []), proposed.get("$remove", [])
        if not isinstance(add, list) or not isinstance(remove, list):
            raise MergeError('"$add" and "$remove" must be lists')
        for item in (*add, *remove):
            if not isinstance(item, str | int | float) or isinstance(item, bool):
                raise MergeError("set members must be strings or numbers")
    elif resolver != "server":
        raise MergeError(f"unknown resolver {resolver!r}")


def _canonical(value: JsonValue) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _later(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def members(elements: Mapping[str, Element], deleted_at: str | None) -> list[JsonValue]:
    """The members of a set: added after their last remove (a tie: added) and the delete."""
    present = [
        json.loads(key)
        for key, (added, removed) in elements.items()
        if added is not None
        and (removed is None or added >= removed)
        and (deleted_at is None or added > deleted_at)
    ]
    return sorted(present, key=lambda m: (isinstance(m, str), m))


def _elements_of(row: Row, column: str) -> dict[str, Element]:
    """A set column's member states; rows stored before member clocks existed get them from
    the column's clock (every member added then)."""
    if column in row.elements:
        return {k: (a, r) for k, (a, r) in row.elements[column].items()}
    listed = row.values.get(column)
    clock = row.clocks.get(column)
    if not isinstance(listed, list) or clock is None:
        return {}
    return {_canonical(m): (clock, None) for m in listed}


def _after(stamp: str | None, cutoff: str) -> str | None:
    return stamp if stamp is not None and stamp > cutoff else None


def _counter_base(value: JsonValue) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _hide(row: Row, cutoff: str, resolvers: Mapping[str, str]) -> Row:
    """``row`` after a delete marker at ``cutoff``: what it hides is dropped, but a counter's
    sum and the set-member timestamps a later write is compared with are kept."""
    values: dict[str, JsonValue] = {}
    clocks: dict[str, str] = {}
    elements: dict[str, dict[str, Element]] = {}
    for column, clock in row.clocks.items():
        kind = resolvers.get(column, "lww")
        if kind == "set":
            # Clocks at or before the marker no longer decide anything (an add there is hidden,
            # a remove there is outranked by the marker): forget them, so the state is the
            # same whichever side of the delete a write arrived on.
            kept = {
                key: (_after(added, cutoff), _after(removed, cutoff))
                for key, (added, removed) in _elements_of(row, column).items()
                if (_later(added, removed) or "") > cutoff
            }
            if kept:
                elements[column] = kept
            if clock > cutoff:
                values[column], clocks[column] = members(kept, cutoff), clock
        elif kind == "counter" or clock > cutoff:
            if column in row.values:
                values[column] = row.values[column]
            clocks[column] = clock
    return Row(values, clocks, cutoff, elements)


def _changed(before: Mapping[str, JsonValue], after: Mapping[str, JsonValue]) -> tuple[str, ...]:
    columns = set(before) | set(after)
    return tuple(sorted(c for c in columns if before.get(c, _MISSING) != after.get(c, _MISSING)))


def merge(
    row: Row | None,
    op: Op,
    values: Mapping[str, JsonValue],
    timestamp: Timestamp,
    resolvers: Mapping[str, str],
) -> Merged:
    """Apply one client mutation to ``row`` (``None``: the server has no record of the row).

    ``resolvers`` maps column → resolver name; unnamed columns are ``lww``. Raises
    :class:`MergeError` for a malformed mutation (whatever the row's state); a well-formed
    write that loses (to a later write, a later delete, or because the row does not exist)
    comes back as overrides.
    """
    clock = timestamp.encode()
    current = row or Row()
    before = current.visible()
    existed = row is not None and not current.deleted
    if op is Op.DELETE:
        if values:
            raise MergeError("a delete carries no values")
        after_row = _hide(current, _later(current.deleted_at, clock) or clock, resolvers)
        after = after_row.visible()
        overrides = tuple(
            Override(c, None, v, WRITTEN_AFTER_DELETE) for c, v in sorted(after.items())
        )
        return Merged(after_row, _changed(before, after), overrides, existed)

    kinds = {column: resolvers.get(column, "lww") for column in values}
    for column, kind in sorted(kinds.items()):
        if kind not in RESOLVERS:
            raise MergeError(f"column {column!r} has an unknown resolver {kind!r}")
        validate(kind, values[column])

    if op is Op.UPDATE and row is None:
        overrides = tuple(Override(c, values[c], None, NO_SUCH_ROW) for c in sorted(values))
        return Merged(current, (), overrides, existed)

    new_values = dict(current.values)
    new_clocks = dict(current.clocks)
    new_elements = {c: dict(e) for c, e in current.elements.items()}
    marker = current.deleted_at
    lost: list[Override] = []
    for column in sorted(values):
        kind, proposed = kinds[column], values[column]
        if kind == "server":
            lost.append(Override(column, proposed, before.get(column), SERVER_OWNED))
            continue
        old_clock = new_clocks.get(column)
        if marker is not None and clock <= marker:
            lost.append(Override(column, proposed, None, DELETED_AFTER))
            if kind == "counter":  # still part of the (hidden) sum, as in the other order
                new_values[column] = _counter_base(new_values.get(column)) + proposed["$inc"]
                new_clocks[column] = _later(old_clock, clock) or clock
            continue
        if kind == "lww":
            old = new_values.get(column, _MISSING)
            wins = (
                old_clock is None
                or old is _MISSING
                or clock > old_clock
                or (clock == old_clock and _canonical(proposed) > _canonical(old))
            )
            if wins:
                new_values[column], new_clocks[column] = proposed, _later(old_clock, clock) or clock
            elif proposed != old:
                lost.append(Override(column, proposed, old, LATER_WRITE_WON))
        elif kind == "counter":
            new_values[column] = _counter_base(new_values.get(column)) + proposed["$inc"]
            new_clocks[column] = _later(old_clock, clock) or clock
        else:  # set
            state = _elements_of(current, column)
            for item in proposed.get("$remove", []):
                key = _canonical(item)
                added, removed = state.get(key, (None, None))
                state[key] = (added, _later(removed, clock))
            for item in proposed.get("$add", []):
                key = _canonical(item)
                added, removed = state.get(key, (None, None))
                state[key] = (_later(added, clock), removed)
            new_elements[column] = state
            new_clocks[column] = _later(old_clock, clock) or clock
            new_values[column] = members(state, marker)
    merged = Row(new_values, new_clocks, marker, new_elements)
    return Merged(merged, _changed(before, merged.visible()), tuple(lost), existed)
