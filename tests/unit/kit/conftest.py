"""Helpers for the kit's unit tests: an in-process HTTP client for a tiny app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

ClientFactory = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def client_for() -> ClientFactory:
    """``async with client_for(app) as client``: requests go to ``app`` in process.

    ``raise_app_exceptions=False``: an unexpected error must come back as the kit's 500 body,
    the way a real server answers, not as an exception in the test.
    """

    @asynccontextmanager
    async def open_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client

    return open_client
