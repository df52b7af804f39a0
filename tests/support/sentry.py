"""sentry-python as an app uses it, pointed at a DSN of ours: sessions that end healthy,
errored or crashed (an unhandled exception), flushed before the block ends."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sentry_sdk
from sentry_sdk.utils import event_from_exception


@contextmanager
def sentry(dsn: str, release: str, **options: Any) -> Iterator[None]:
    sentry_sdk.init(
        dsn=dsn,
        release=release,
        **options,
        environment="production",
        default_integrations=False,
        auto_enabling_integrations=False,
        auto_session_tracking=False,
        traces_sample_rate=None,
    )
    try:
        yield
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close(timeout=10)
        sentry_sdk.get_global_scope().set_client(None)
        sentry_sdk.get_isolation_scope().set_user(None)


def checkout(amount: int) -> None:
    if amount < 0:
        raise ValueError(f"negative amount {amount}")


def load_profile(user: str) -> None:
    raise KeyError(user)


def session(user: str, outcome: str) -> None:
    """One application session of ``user`` ending ``healthy``, ``errored`` or ``crashed``."""
    scope = sentry_sdk.get_isolation_scope()
    sentry_sdk.set_user({"id": user})
    scope.start_session(session_mode="application")
    if outcome == "errored":
        try:
            checkout(-1)
        except ValueError:
            sentry_sdk.capture_exception()
    elif outcome == "crashed":
        try:
            load_profile(user)
        except KeyError:
            client = sentry_sdk.get_client()
            event, hint = event_from_exception(
                sys.exc_info(), client.options, mechanism={"type": "test", "handled": False}
            )
            sentry_sdk.capture_event(event, hint=hint)
    scope.end_session()
