"""Which headers go to the upstream and back (RFC 9110 §7.6.1), decided without I/O.

To the upstream:

- **hop-by-hop** headers are dropped — the fixed list below and every header the
  ``Connection`` header names: they describe one connection, not the message;
- the **identity headers** (``kit.identity.IDENTITY_HEADERS``) are dropped from every client
  request, whatever the route, and set from the validated token only: upstreams trust them,
  so a client must never be able to send its own;
- ``X-Forwarded-For`` is *set* to the client address the server saw (uvicorn already took it
  from a trusted proxy's ``X-Forwarded-For`` when ``FORWARDED_ALLOW_IPS`` says so), never
  appended to: what a client wrote there is not evidence. ``X-Forwarded-Proto`` and
  ``X-Forwarded-Host`` likewise describe the request the gateway received;
- ``x-request-id`` is the id the gateway chose (the client's when safe, else a new one);
- ``traceparent``/``tracestate`` are replaced by the gateway's own span context (added by
  the proxy), a child of the client's trace;
- ``Host`` is the upstream's own (the HTTP client sets it).

Back to the client: hop-by-hop headers are dropped, and so is the upstream's ``Date``: the
server the gateway runs in (uvicorn) writes its own ``Date`` on every response without looking
at the app's headers, so a forwarded one made every proxied response carry two (issue 21 §4).
Everything else passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mobileplane.services.kit.context import REQUEST_ID_HEADER
from mobileplane.services.kit.identity_contract import IDENTITY_HEADERS

#: RFC 9110 §7.6.1 and the classic list (RFC 2616 §13.5.1): meaningful for one connection.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

#: Set by the gateway from what it saw; a client's values are discarded.
GATEWAY_SET = frozenset(
    {
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        "x-real-ip",
        REQUEST_ID_HEADER,
        "traceparent",
        "tracestate",
        "host",
    }
)

Header = tuple[str, str]


def connection_tokens(headers: Iterable[Header]) -> frozenset[str]:
    """Header names listed in ``Connection`` (hop-by-hop for this message)."""
    names: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            names.update(t.strip().lower() for t in value.split(",") if t.strip())
    return frozenset(names)


def _end_to_end(headers: Iterable[Header]) -> list[Header]:
    headers = list(headers)
    dropped = HOP_BY_HOP | connection_tokens(headers)
    return [(n, v) for n, v in headers if n.lower() not in dropped]


def upstream_request_headers(
    client_headers: Iterable[Header],
    *,
    identity_headers: Mapping[str, str],
    client_ip: str | None,
    scheme: str,
    host: str | None,
    request_id: str,
) -> list[Header]:
    """The headers of the request to the upstream (see the module docstring)."""
    removed = GATEWAY_SET | frozenset(IDENTITY_HEADERS)
    # A field value excludes leading and trailing whitespace (RFC 9110 §5.5); servers may
    # tolerate it on the way in, but an HTTP client refuses to send it on (``Bearer ``).
    out = [(n, v.strip(" \t")) for n, v in _end_to_end(client_headers) if n.lower() not in removed]
    out.extend(identity_headers.items())
    if client_ip:
        out.append(("x-forwarded-for", client_ip))
    out.append(("x-forwarded-proto", scheme))
    if host:
        out.append(("x-forwarded-host", host))
    out.append((REQUEST_ID_HEADER, request_id))
    return out


#: Written by the gateway's own server on every response it sends; the upstream's copy goes.
SERVER_SET = frozenset({"date"})


def client_response_headers(upstream_headers: Iterable[Header]) -> list[Header]:
    """The upstream response's headers as the client gets them (hop-by-hop and ``Date``
    dropped)."""
    return [(k, v) for k, v in _end_to_end(upstream_headers) if k.lower() not in SERVER_SET]
