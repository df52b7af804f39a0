"""Sending email (verification links) through a pluggable sender.

The default sender logs the message (with the link) at INFO: enough for development and for
tests, which read it from the sender's outbox. A production sender (SMTP, SES…) implements
:class:`EmailSender`; the service picks one by ``AUTH_EMAIL_SENDER``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

_logger = logging.getLogger("mobileplane.auth.mail")


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str
    link: str | None = None


class EmailSender(Protocol):
    async def send(self, email: Email) -> None: ...


@dataclass
class LoggingSender:
    """Logs each message; keeps the last ones in :attr:`outbox` (bounded) for inspection."""

    outbox: list[Email] = field(default_factory=list)
    keep: int = 100

    async def send(self, email: Email) -> None:
        _logger.info("email to %s: %s %s", email.to, email.subject, email.link or "")
        self.outbox.append(email)
        del self.outbox[: -self.keep]


def create_sender(kind: str) -> EmailSender:
    if kind == "log":
        return LoggingSender()
    raise ValueError(f"unknown AUTH_EMAIL_SENDER {kind!r}; supported: log")
