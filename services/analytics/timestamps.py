"""Event times (pure): parsing ISO 8601 and Segment's clock-skew correction.

A message carries up to three times: ``timestamp`` (when the event happened, by the device's
clock), ``sentAt`` (when the device sent the batch, by the same clock) and, set here,
``receivedAt`` (when the server received it, by the server's clock). Device clocks are often
wrong, so like Segment the service computes the event's time on the server's clock::

    corrected = receivedAt - (sentAt - timestamp)

The device's clock error cancels out of ``sentAt - timestamp``; what remains is the
network's delay, which is small. Rules:

- no ``sentAt``: the corrected time is ``timestamp`` as sent;
- no ``timestamp``: it is ``receivedAt``;
- the result is kept between 1970 and ``receivedAt``: a corrected time after ``receivedAt``
  (``sentAt`` before ``timestamp``: a clock changed between the event and the upload) is
  clamped to ``receivedAt``, as nothing happens in the future.

The original ``timestamp`` and ``sentAt`` are kept as sent, next to ``receivedAt``.
Timestamps without a time zone are read as UTC (Segment documents ISO 8601 with one).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

#: A date with a time: what ISO 8601 timestamps look like (``fromisoformat`` alone also takes
#: ``20240101`` or week dates, which no SDK sends).
_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}([.,]\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?)?"
)
_MIN = datetime(1970, 1, 1, tzinfo=UTC)


class TimestampError(ValueError):
    """A value that is not an ISO 8601 timestamp."""


def parse_timestamp(value: object, field: str) -> datetime | None:
    """``None`` for an absent field, an aware UTC datetime, or :class:`TimestampError`."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TimestampError(f"{field} must be an ISO 8601 string")
    text = value.strip()
    if not _ISO.fullmatch(text):
        raise TimestampError(f"{field} is not an ISO 8601 timestamp")
    # Python 3.11 reads at most microseconds: cut nanoseconds ("…12.123456789Z").
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise TimestampError(f"{field} is not a valid date and time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise TimestampError(f"{field} is out of range") from None
    if parsed < _MIN:
        raise TimestampError(f"{field} is before 1970")
    return parsed


def corrected_time(
    timestamp: datetime | None, sent_at: datetime | None, received_at: datetime
) -> datetime:
    """The event's time on the server's clock (see the module's docstring)."""
    if timestamp is None:
        return received_at
    if sent_at is None:
        corrected = timestamp
    else:
        try:
            corrected = received_at - (sent_at - timestamp)
        except OverflowError:
            corrected = received_at
    return max(min(corrected, received_at), _MIN)
