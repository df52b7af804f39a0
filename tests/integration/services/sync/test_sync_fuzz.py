"""Bad input never breaks the sync service: schemathesis fuzzes its OpenAPI document against a
real uvicorn, as an authenticated user, and no answer may be a 5xx."""

from __future__ import annotations

from support.fuzz import fuzz_service

from mobileplane.services.kit.identity import Identity, identity_headers


def test_no_input_makes_the_sync_service_fail(sync_url: str) -> None:
    user = identity_headers(Identity("fuzzer", frozenset({"sync"})))
    # The event stream never ends by design: fuzzing it would only wait for the timeout.
    failures = fuzz_service(sync_url, headers=user, skip=lambda _m, path: path.endswith("/events"))
    assert failures == []
