"""When a service pod's init container stops waiting for the migration Job."""

from __future__ import annotations

import pytest

from mobileplane.services.runner import schema_behind

KNOWN = frozenset({"r1", "r2"})


@pytest.mark.parametrize(
    ("current", "head", "behind"),
    [
        pytest.param(None, "r2", True, id="no-schema-yet"),
        pytest.param("r1", "r2", True, id="an-older-revision"),
        pytest.param("r2", "r2", False, id="at-head"),
        pytest.param("r9", "r2", False, id="newer-than-this-image"),  # an image rolled back
        pytest.param(None, None, False, id="a-set-without-migrations"),
    ],
)
def test_schema_behind(current: str | None, head: str | None, behind: bool) -> None:
    assert schema_behind(current, head, KNOWN) is behind
