"""Bad input never breaks the telemetry service's API: schemathesis fuzzes its OpenAPI
document against a real uvicorn, as an administrator, and no answer may be a 5xx. (The
envelope endpoint's own bad-input cases — truncated, garbage, oversized, wrongly
authenticated — are tested one by one in test_telemetry_ingest.py.)"""

from __future__ import annotations

from support.fuzz import fuzz_service

from mobileplane.services.kit.identity import Identity, identity_headers


def test_no_input_makes_the_telemetry_service_fail(telemetry_url: str) -> None:
    admin = identity_headers(
        Identity("fuzzer", frozenset({"telemetry", "telemetry:admin", "telemetry:read"}))
    )
    assert fuzz_service(telemetry_url, headers=admin, max_examples=15) == []
