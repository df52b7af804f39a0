"""The request id, where every part of a request can find it.

The request-context middleware (:mod:`mobileplane.services.kit.logging`) decides the id once
per request and stores it twice: in a context variable, so log records and code deep in a
service see it without passing it around, and in the ASGI scope's ``state``, so the error
handlers that run *outside* the middleware (Starlette's server-error middleware) still find
it after the context variable was reset.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

REQUEST_ID_HEADER = "x-request-id"

# Why bounded and restricted: the id is echoed in a response header and written to logs, so a
# client must not be able to inject separators, control characters or megabytes into either.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("mobileplane_request_id", default=None)


def is_valid_request_id(value: str) -> bool:
    return _VALID_REQUEST_ID.fullmatch(value) is not None


def new_request_id() -> str:
    return uuid.uuid4().hex


def choose_request_id(incoming: str | None) -> str:
    """Keep a caller's id when it is safe to echo, otherwise make a new one."""
    if incoming is not None and is_valid_request_id(incoming):
        return incoming
    return new_request_id()


def store_request_id(scope: MutableMapping[str, Any], request_id: str) -> None:
    state = scope.setdefault("state", {})
    state["request_id"] = request_id


def current_request_id(scope: MutableMapping[str, Any] | None = None) -> str | None:
    """The id of the request being served: from ``scope`` if given, else the context."""
    if scope is not None:
        state = scope.get("state")
        if isinstance(state, dict):
            found = state.get("request_id")
            if isinstance(found, str):
                return found
    return request_id_var.get()
