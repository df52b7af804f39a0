"""The HTML the provider shows in the app's browser tab: the login page and short messages.

Rendered with Jinja2 and autoescaping (every value shown comes from a request or a user).
Pages are served with ``Cache-Control: no-store`` and ``X-Frame-Options: DENY`` plus a
``frame-ancestors 'none'`` CSP, so a login form cannot be framed (clickjacking).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)

SECURITY_HEADERS = {
    "cache-control": "no-store",
    "pragma": "no-cache",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}


def page(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **values: Any
) -> HTMLResponse:
    html = _env.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def message(
    display_name: str, title: str, message: str, status: int, next_step: str | None = None
) -> HTMLResponse:
    return page(
        "message.html",
        status,
        display_name=display_name,
        title=title,
        message=message,
        next_step=next_step,
    )
