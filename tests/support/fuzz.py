"""Fuzz every operation of a running service's OpenAPI document with schemathesis.

Each operation gets ``max_examples`` generated requests (valid and invalid by the schema);
:func:`fuzz_service` returns the failures: any 5xx answer, with the request that caused it.
Used by each service's fuzz test ("bad input gets a 4xx, never a 500").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings


def fuzz_service(
    base_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    max_examples: int = 25,
    prepare: Callable[[Any], None] | None = None,
    skip: Callable[[str, str], bool] | None = None,
) -> list[str]:
    """Fuzz the service at ``base_url``; returns one line per 5xx (empty: none)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if skip and skip(operation.method.upper(), operation.path):
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            if prepare:
                prepare(case)
            response = case.call(base_url=base_url, headers=dict(headers or {}), timeout=20)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:300]}"
                )

        check()
    return failures
