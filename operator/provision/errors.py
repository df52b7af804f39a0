"""What can go wrong when the operator provisions an external resource, and what happens next.

Every failure of a provisioning gateway (PostgreSQL, S3) is a :class:`ProvisioningError`, and
each one says whether trying again can help:

- :class:`Unreachable` — the server could not be reached (connection refused, timeout, DNS,
  connection lost). Transient: the operator raises ``kopf.TemporaryError`` and retries with
  backoff.
- :class:`Refused` — the server answered "no" (permission denied, invalid name, bucket owned
  by someone else, wrong credentials). Permanent until the spec or the Secret changes: the
  operator reports a condition and does not retry in a storm.
- :class:`InProgress` — the work is going well but is not finished (e.g. a large bucket is
  being emptied in batches). Transient with a short ``retry_after``: the operator requeues
  rather than blocking a handler for minutes.
- a plain :class:`ProvisioningError` is anything else; its ``transient`` flag says which way
  it leans (a server-side error may pass; a surprise in our own statements will not).

The message always names what failed and what to do next, because it ends up verbatim in a
condition's ``message`` and in ``kubectl describe``. The third-party exception is chained
(``raise ... from e``) for the logs; its type never leaves the gateway module.
"""

from __future__ import annotations


class ProvisioningError(Exception):
    """A provisioning step failed; ``transient`` says whether retrying can help."""

    #: Whether the same call may succeed later without anyone changing anything.
    transient: bool = True
    #: Seconds after which a retry makes sense, when the gateway knows better than a backoff.
    retry_after: float | None = None
    #: A CamelCase reason for a condition (``metav1.Condition.reason``).
    reason: str = "ProvisioningFailed"

    def __init__(
        self,
        message: str,
        *,
        transient: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if transient is not None:
            self.transient = transient
        if retry_after is not None:
            self.retry_after = retry_after


class Unreachable(ProvisioningError):
    """The server could not be reached or the connection broke: retry with backoff."""

    transient = True
    reason = "Unreachable"


class Refused(ProvisioningError):
    """The server refused, or the request is invalid: permanent until the spec/Secret changes."""

    transient = False
    reason = "Refused"


class InProgress(ProvisioningError):
    """Work was done and more remains: call again soon (the operator requeues)."""

    transient = True
    retry_after = 1.0
    reason = "InProgress"
