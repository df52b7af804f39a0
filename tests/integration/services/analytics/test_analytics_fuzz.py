"""Bad input never breaks the analytics service: schemathesis fuzzes its OpenAPI document
(ingestion with a valid write key, and the admin API as an administrator) against a real
uvicorn, and no answer may be a 5xx."""

from __future__ import annotations

import pytest
from support.analytics import IOS_KEY, basic
from support.fuzz import fuzz_service

from mobileplane.services.kit.identity import Identity, identity_headers

pytestmark = pytest.mark.integration


def test_no_input_makes_the_analytics_service_fail(analytics_url: str) -> None:
    headers = {
        **identity_headers(Identity("fuzzer", frozenset({"analytics:admin", "analytics:read"}))),
        **basic(IOS_KEY),
    }
    assert fuzz_service(analytics_url, headers=headers, max_examples=25) == []
