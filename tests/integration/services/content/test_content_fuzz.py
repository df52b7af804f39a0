"""Bad input never breaks the content service: schemathesis fuzzes its OpenAPI document
against a real uvicorn, as an editor, and no answer may be a 5xx."""

from __future__ import annotations

from support.fuzz import fuzz_service

from mobileplane.services.kit.identity import Identity, identity_headers


def test_no_input_makes_the_content_service_fail(content_url: str) -> None:
    editor = identity_headers(Identity("fuzzer", frozenset({"content", "content:write"})))
    assert fuzz_service(content_url, headers=editor) == []
