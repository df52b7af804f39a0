"""The gateway's own errors, in the kit's JSON shape (``kit/errors.py``).

502 when the upstream cannot be reached or answers nonsense, 504 when it does not answer in
the route's time, 413 for bodies over the route's limit; 503 (the circuit is open, or Redis
is down with fail-closed) is the kit's :class:`~kit.errors.Unavailable`.
"""

from __future__ import annotations

from mobileplane.services.kit.errors import ServiceError


class BadGateway(ServiceError):
    status_code = 502
    code = "bad_gateway"


class GatewayTimeout(ServiceError):
    status_code = 504
    code = "gateway_timeout"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class NoRoute(ServiceError):
    status_code = 404
    code = "no_route"
