"""Bad input never breaks the auth service: schemathesis fuzzes every operation of its
OpenAPI document against a real uvicorn, and no answer may be a 5xx."""

from __future__ import annotations

from typing import Any

from support.fuzz import fuzz_service


def test_no_input_makes_the_auth_service_fail(auth_server: Any) -> None:
    server = auth_server()
    assert fuzz_service(server.url) == []
