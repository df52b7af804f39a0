"""Sentry's session rules (pure): session updates and aggregates, validated and merged.

A *session* is one use of the app (mobile: foreground to background; server: one request).
SDKs report it with ``session`` items — updates of one session, identified by ``sid`` — or, in
request mode, with ``sessions`` items holding pre-aggregated counts per minute
(https://develop.sentry.dev/sdk/sessions/):

- an update carries ``sid``, ``did`` (the user or device), ``init`` (first update),
  ``started``, ``timestamp``, ``seq`` (a logical clock: a later update has a higher ``seq``;
  SDKs that omit it, like sentry-python, are ordered by ``timestamp``), ``status``, ``errors``
  and ``attrs.release``/``attrs.environment`` (release is required);
- ``status`` is ``ok`` while running; ``exited`` (ended normally), ``crashed`` (ended by an
  unhandled error), ``abnormal`` (killed by the OS, watchdog, ANR) are terminal; ``errored``
  is accepted as a terminal state too (older SDKs);
- a session with ``errors > 0`` that neither crashed nor ended abnormally is *errored*.

Storage keeps one row per ``sid`` and merges every update into it with :func:`merge`, which is
idempotent, commutative and associative (a hypothesis property) and monotone (a terminal state
is never replaced by a later ``ok``): a retried or reordered update never double counts, and
each session counts once in its final state. :func:`outcome` maps a merged session to exactly one of
``healthy``, ``errored``, ``abnormal``, ``crashed``, the classes release health adds up.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["ok", "exited", "crashed", "abnormal", "errored"]
Outcome = Literal["healthy", "errored", "abnormal", "crashed"]
STATUSES: frozenset[str] = frozenset({"ok", "exited", "crashed", "abnormal", "errored"})
TERMINAL: frozenset[str] = frozenset({"exited", "crashed", "abnormal", "errored"})
#: A status's rank breaks ties between two updates with the same ordering key (should not
#: happen; but a crash must never lose to an exit).
_RANK = {"ok": 0, "exited": 1, "errored": 2, "abnormal": 3, "crashed": 4}


class SessionError(ValueError):
    """A session payload breaks the protocol; the message says which field."""


@dataclass(frozen=True)
class SessionUpdate:
    sid: str
    did: str | None
    init: bool
    started: datetime
    timestamp: datetime
    seq: int | None
    status: Status
    errors: int
    release: str
    environment: str
    duration: float | None = None


@dataclass(frozen=True)
class SessionState:
    """A session as stored: every update merged."""

    sid: str
    did: str | None
    init: bool
    started: datetime
    timestamp: datetime
    seq: int  # the latest update's order key
    status: Status
    errors: int
    release: str
    environment: str
    duration: float | None
    first_seq: int = 0  # the earliest update's order key: attributes come from it
    status_seq: int = 0  # the order key of the update that set ``status``


@dataclass(frozen=True)
class AggregateBucket:
    started: datetime
    did: str | None
    exited: int
    errored: int
    abnormal: int
    crashed: int
    release: str
    environment: str

    @property
    def total(self) -> int:
        return self.exited + self.errored + self.abnormal + self.crashed


def parse_time(value: Any, field: str) -> datetime:
    """An RFC 3339 timestamp or a Unix time in seconds, as an aware UTC datetime."""
    if isinstance(value, bool):
        raise SessionError(f"{field} must be a timestamp")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise SessionError(f"{field} is out of range") from None
    if not isinstance(value, str):
        raise SessionError(f"{field} must be a timestamp")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise SessionError(f"{field} is not an RFC 3339 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _attrs(payload: Mapping[str, Any], what: str) -> tuple[str, str]:
    attrs = payload.get("attrs")
    if not isinstance(attrs, Mapping):
        raise SessionError(f"{what}: attrs.release is required")
    release = attrs.get("release")
    if not isinstance(release, str) or not release.strip() or len(release) > 250:
        raise SessionError(f"{what}: attrs.release is required (a string of 1-250 characters)")
    environment = attrs.get("environment") or "production"
    if not isinstance(environment, str) or len(environment) > 64:
        raise SessionError(f"{what}: attrs.environment must be a string of at most 64 characters")
    return release.strip(), environment


def _count(value: Any, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SessionError(f"{field} must be an integer >= 0")
    return value


def _did(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise SessionError("did must be a string")
    return str(value)[:128]


def parse_update(payload: Mapping[str, Any]) -> SessionUpdate:
    """A ``session`` item's payload, validated."""
    sid_raw = payload.get("sid")
    try:
        sid = str(uuid.UUID(str(sid_raw)))
    except ValueError:
        raise SessionError("sid must be a UUID") from None
    status = payload.get("status", "ok")
    if status not in STATUSES:
        raise SessionError(f"status must be one of {', '.join(sorted(STATUSES))}")
    seq = payload.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0):
        raise SessionError("seq must be an integer >= 0")
    if "started" not in payload:
        raise SessionError("started is required")
    started = parse_time(payload["started"], "started")
    timestamp = parse_time(payload.get("timestamp", payload["started"]), "timestamp")
    duration = payload.get("duration")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float)
    ):
        raise SessionError("duration must be a number")
    release, environment = _attrs(payload, "session")
    return SessionUpdate(
        sid=sid,
        did=_did(payload.get("did")),
        init=payload.get("init") is True,
        started=started,
        timestamp=timestamp,
        seq=seq,
        status=status,
        errors=_count(payload.get("errors"), "errors"),
        release=release,
        environment=environment,
        duration=None if duration is None else float(duration),
    )


def order_key(update: SessionUpdate | SessionState) -> int:
    """Which update is later: ``seq`` when the SDK sends it, else the timestamp in µs."""
    if update.seq is not None:
        return update.seq
    return int(update.timestamp.timestamp() * 1_000_000)


def start(update: SessionUpdate) -> SessionState:
    key = order_key(update)
    return SessionState(
        first_seq=key,
        status_seq=key,
        sid=update.sid,
        did=update.did,
        init=update.init,
        started=update.started,
        timestamp=update.timestamp,
        seq=order_key(update),
        status=update.status,
        errors=update.errors,
        release=update.release,
        environment=update.environment,
        duration=update.duration,
    )


def merge(state: SessionState | None, update: SessionUpdate) -> SessionState:
    """``state`` with ``update`` applied (``None``: the first update seen for this sid)."""
    incoming = start(update)
    return incoming if state is None else combine(state, incoming)


def combine(a: SessionState, b: SessionState) -> SessionState:
    """Two partial views of one session merged.

    Every field is a maximum or minimum under a total order, so merging is idempotent,
    commutative and associative: any arrival order of any set of updates, duplicates included,
    gives the same session. The status is the latest *terminal* one if any (a session that
    ended stays ended), else the latest; ties at one order key go to the worse status.
    Attributes (release, environment) are the earliest update's. ``did`` should be the same in
    every update of a session (one session, one user); should updates disagree, the smallest
    wins — "the earliest known" would not survive merging in any order, since a merged view
    keeps only its earliest sequence number, not the one that carried its ``did``.
    """

    def status_key(s: SessionState) -> tuple[bool, int, int]:
        return (s.status in TERMINAL, s.status_seq, _RANK[s.status])

    by_status = max(a, b, key=status_key)
    earliest = min(a, b, key=lambda s: (s.first_seq, s.release, s.environment))
    dids = [s.did for s in (a, b) if s.did is not None]
    # The longest duration: a session's duration only grows from update to update, and a
    # plain maximum (unlike "the latest update's") is the same in any merge order.
    durations = [s.duration for s in (a, b) if s.duration is not None]
    return SessionState(
        sid=a.sid,
        did=min(dids) if dids else None,
        init=a.init or b.init,
        started=min(a.started, b.started),
        timestamp=max(a.timestamp, b.timestamp),
        seq=max(a.seq, b.seq),
        status=by_status.status,
        errors=max(a.errors, b.errors),
        release=earliest.release,
        environment=earliest.environment,
        duration=max(durations) if durations else None,
        first_seq=min(a.first_seq, b.first_seq),
        status_seq=by_status.status_seq,
    )


def outcome(state: SessionState) -> Outcome:
    if state.status == "crashed":
        return "crashed"
    if state.status == "abnormal":
        return "abnormal"
    if state.errors > 0 or state.status == "errored":
        return "errored"
    return "healthy"


def parse_aggregates(payload: Mapping[str, Any]) -> list[AggregateBucket]:
    """A ``sessions`` item: ``{"aggregates": [{"started", "exited", …}], "attrs": {…}}``."""
    release, environment = _attrs(payload, "sessions")
    rows = payload.get("aggregates")
    if not isinstance(rows, list):
        raise SessionError("sessions: aggregates must be a list")
    if len(rows) > 10_000:
        raise SessionError("sessions: at most 10000 aggregate buckets per item")
    buckets = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise SessionError(f"sessions: aggregates[{i}] must be an object")
        if "started" not in row:
            raise SessionError(f"sessions: aggregates[{i}].started is required")
        buckets.append(
            AggregateBucket(
                started=parse_time(row["started"], f"aggregates[{i}].started"),
                did=_did(row.get("did")),
                exited=_count(row.get("exited"), f"aggregates[{i}].exited"),
                errored=_count(row.get("errored"), f"aggregates[{i}].errored"),
                abnormal=_count(row.get("abnormal"), f"aggregates[{i}].abnormal"),
                crashed=_count(row.get("crashed"), f"aggregates[{i}].crashed"),
                release=release,
                environment=environment,
            )
        )
    return buckets
