"""Bad input never breaks the profiles service: schemathesis fuzzes its OpenAPI document
(bodies, path parameters, ``If-Match``/``If-None-Match``) against a real uvicorn on the stack's
Postgres, Redis and S3, as a signed-in user, and no answer may be a 5xx."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from support.fuzz import fuzz_service
from support.uvicorn_server import ServerHandle

from mobileplane.services.kit.identity import Identity, identity_headers

pytestmark = pytest.mark.integration


@pytest.fixture
def profiles_url(make_app: Callable[..., FastAPI]) -> Iterator[str]:
    handle = ServerHandle(make_app)
    handle.start()
    yield handle.url
    handle.stop()


def test_no_input_makes_the_profiles_service_fail(profiles_url: str) -> None:
    user = identity_headers(Identity("fuzzer", frozenset({"profiles"})))
    assert fuzz_service(profiles_url, headers=user, max_examples=50) == []
