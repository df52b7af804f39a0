"""Sending email (verification and password-reset links) through a pluggable sender.

``AUTH_EMAIL_SENDER`` picks one:

- ``log`` (the default) logs the message with its link at INFO and keeps the last ones in
  :attr:`LoggingSender.outbox`: enough for development and tests, not for users.
- ``smtp`` submits it to an SMTP server (a relay such as SES, SendGrid, Postmark or the
  organisation's own), with STARTTLS (port 587, the default), implicit TLS (465) or, on a
  trusted network only, plain SMTP; with a login when ``AUTH_SMTP_USERNAME`` is set. TLS
  certificates are verified. smtplib blocks, so each message is sent in a worker thread.

A message that cannot be sent raises :class:`MailError` (with what the server said): the
caller decides whether that fails the request (a resend: 503) or not (a sign-up: the account
exists, the user can ask for another link).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

_logger = logging.getLogger("mobileplane.auth.mail")


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str
    link: str | None = None


class MailError(Exception):
    """The message was not accepted for delivery."""


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


@dataclass(frozen=True)
class SmtpSender:
    """Submits messages to an SMTP server."""

    host: str
    port: int
    sender: str  # the From header, e.g. "Shop <no-reply@shop.example.com>"
    security: str = "starttls"  # starttls | tls | none
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    #: Trust store for the server's certificate (None: the system's).
    cafile: str | None = None

    def message(self, email: Email) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = email.to
        msg["Subject"] = email.subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1].strip("> "))
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
        msg.set_content(email.body)
        return msg

    async def send(self, email: Email) -> None:
        await asyncio.to_thread(self._send, self.message(email))

    def _send(self, msg: EmailMessage) -> None:
        context = ssl.create_default_context(cafile=self.cafile)
        try:
            if self.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=context
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                client.ehlo()
                if self.security == "starttls":
                    client.starttls(context=context)
                    client.ehlo()
                if self.username:
                    client.login(self.username, self.password or "")
                refused = client.send_message(msg)
        except (smtplib.SMTPException, OSError) as e:
            raise MailError(f"{self.host}:{self.port} did not take the message: {e}") from e
        if refused:
            raise MailError(f"{self.host}:{self.port} refused the recipient(s): {refused}")


def create_sender(
    kind: str,
    *,
    host: str | None = None,
    port: int = 587,
    sender: str = "",
    security: str = "starttls",
    username: str | None = None,
    password: str | None = None,
    timeout: float = 10.0,
    cafile: str | None = None,
) -> EmailSender:
    if kind == "log":
        return LoggingSender()
    if kind == "smtp":
        if not host or not sender:
            raise ValueError("AUTH_EMAIL_SENDER=smtp needs AUTH_SMTP_HOST and AUTH_EMAIL_FROM")
        return SmtpSender(host, port, sender, security, username, password, timeout, cafile)
    raise ValueError(f"unknown AUTH_EMAIL_SENDER {kind!r}; supported: log, smtp")
