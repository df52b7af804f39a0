"""One error hierarchy for every service, and the handlers that render it.

A service raises a :class:`ServiceError` subclass where it decides a request cannot be served
(`NotFound`, `Conflict`, ...): the error carries its HTTP status, a stable machine-readable
``code``, a human message and optional structured ``details``. The handlers installed by
:func:`install_error_handlers` render *every* failure in one JSON shape, so a client parses one
format whatever went wrong:

    {"error": {"code": "not_found", "message": "...", "details": null, "request_id": "..."}}

That covers our errors, FastAPI's request validation (422 with per-field details), Starlette's
``HTTPException`` (404 for unknown routes, 405, ...) and unexpected exceptions (500, with the
traceback logged server-side and nothing internal in the body).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mobileplane.services.kit.context import current_request_id

_logger = logging.getLogger("mobileplane.errors")


class ServiceError(Exception):
    """Base of all errors a service raises on purpose; rendered as ``status_code``."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            # A narrower code for the same status, e.g. "object_not_found" for a NotFound.
            self.code = code  # type: ignore[misc]
        self.headers: dict[str, str] = dict(headers or {})


class BadRequest(ServiceError):
    status_code = 400
    code = "bad_request"


class ValidationFailed(BadRequest):
    """The request is well-formed but its content breaks a rule (422, like FastAPI's own)."""

    status_code = 422
    code = "validation_failed"


class Unauthorized(ServiceError):
    """No valid credentials; clients should authenticate (RFC 9110 section 15.5.2)."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "Authentication required", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("www-authenticate", "Bearer")


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class RateLimited(ServiceError):
    """Too many requests; ``retry_after`` seconds is sent as ``Retry-After`` (RFC 9110)."""

    status_code = 429
    code = "rate_limited"

    def __init__(
        self, message: str = "Too many requests", *, retry_after: int, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = max(0, int(retry_after))
        self.headers["retry-after"] = str(self.retry_after)


class Unavailable(ServiceError):
    """A dependency (database, cache, storage) cannot serve now; retrying later may work."""

    status_code = 503
    code = "unavailable"

    def __init__(
        self,
        message: str = "Service temporarily unavailable",
        *,
        retry_after: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        if retry_after is not None:
            self.headers["retry-after"] = str(max(0, int(retry_after)))


def error_body(
    code: str, message: str, details: Any = None, request_id: str | None = None
) -> dict[str, Any]:
    """The one JSON shape of every error response."""
    return {
        "error": {"code": code, "message": message, "details": details, "request_id": request_id}
    }


def error_response(
    request: Request,
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = error_body(code, message, details, current_request_id(request.scope))
    return JSONResponse(body, status_code=status_code, headers=dict(headers or {}))


def unexpected_error_body(request_id: str | None) -> dict[str, Any]:
    """The body of a 500: says nothing about internals, gives the id to quote in a report."""
    return error_body("internal_error", "An unexpected error occurred", None, request_id=request_id)


def _phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return f"HTTP {status_code}"


def code_for_status(status_code: int) -> str:
    """``404`` -> ``not_found``, ``405`` -> ``method_not_allowed``; unknown -> ``http_<n>``."""
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        return f"http_{status_code}"
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


def validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Per-field problems, without echoing the submitted input (it may hold secrets)."""
    return [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "message": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if exc.status_code >= 500:
        _logger.warning("%s: %s", exc.code, exc.message, exc_info=exc.__cause__ is not None)
    return error_response(request, exc.status_code, exc.code, exc.message, exc.details, exc.headers)


def unexpected_media_type(request: Request) -> str | None:
    """The media type of a body sent to a JSON route in another one (``None``: no mismatch).

    FastAPI tries to validate whatever arrives as the route's model and answers 422 ("Input
    should be a valid dictionary") to a form or text body; the right answer is 415."""
    route = request.scope.get("route")
    body = getattr(route, "body_field", None)
    if body is None or isinstance(body.field_info, params.Form):  # Form covers File
        return None
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not media or media == "application/json" or media.endswith("+json"):
        return None
    return media


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    media = unexpected_media_type(request)
    if media is not None and any(e.get("loc", ())[:1] == ("body",) for e in exc.errors()):
        return error_response(
            request,
            415,
            "unsupported_media_type",
            f"this endpoint takes a JSON body (Content-Type: application/json), not {media[:80]}",
        )
    return error_response(
        request, 422, "validation_failed", "Request validation failed", validation_details(exc)
    )


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail: Any = exc.detail  # FastAPI's HTTPException accepts any JSON-able detail
    if isinstance(detail, str):
        message, details = detail, None
    else:
        message, details = _phrase(exc.status_code), detail
    return error_response(
        request, exc.status_code, code_for_status(exc.status_code), message, details, exc.headers
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Reached only when no middleware rendered it first (see RequestContextMiddleware).
    _logger.error("unhandled error", exc_info=exc)
    return JSONResponse(unexpected_error_body(current_request_id(request.scope)), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` in the shape of :func:`error_body`."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
