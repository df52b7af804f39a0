"""``mobileplane telemetry``'s pure parts: the tables a person reads, and what a refusal means."""

from __future__ import annotations

from typing import Any

import pytest

from mobileplane.telemetry_reader import (
    Refusal,
    health_table,
    issue_table,
    parse_refusal,
    refusal,
    verdict,
)

URL = "http://127.0.0.1:8080"


def issue(n: int, last_seen: str, title: str = "KeyError: 'u2'", **fields: Any) -> dict[str, Any]:
    return {
        "project": "demo-android",
        "id": n,
        "status": "unresolved",
        "event_count": 3,
        "user_count": 2,
        "last_seen": last_seen,
        "last_release": "demo@1.2.0",
        "title": title,
        **fields,
    }


def test_issue_table_newest_first_and_aligned() -> None:
    lines = issue_table(
        [
            issue(1, "2026-11-25T10:00:00.5+00:00"),
            issue(12, "2026-11-25T12:03:09+00:00", "ValueError: " + "x" * 100, last_release=None),
        ]
    )
    assert lines[0].split() == [
        "PROJECT", "ISSUE", "STATUS", "EVENTS", "USERS", "LAST", "SEEN", "(UTC)", "RELEASE", "TITLE"
    ]  # fmt: skip
    assert lines[1].split()[:8] == [
        "demo-android", "12", "unresolved", "3", "2", "2026-11-25", "12:03", "-"
    ]  # fmt: skip
    column = lines[0].index("TITLE")
    assert lines[1].endswith("…") and len(lines[1][column:]) == 72
    assert lines[2].split()[1] == "1"
    assert lines[2].endswith("KeyError: 'u2'")
    # Columns line up: every row's title starts where the header's does.
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines)


def rate(value: float | None, verdict_: str, n: int = 2) -> dict[str, Any]:
    if value is None:
        return {"rate": None, "low": None, "high": None, "n": 0, "verdict": "no_data"}
    return {"rate": value, "low": 0.095, "high": 0.9055, "n": n, "verdict": verdict_}


def release(name: str, sessions: dict[str, Any], users: dict[str, Any]) -> dict[str, Any]:
    return {
        "release": name,
        "sessions": {"total": 2, "healthy": 1, "errored": 0, "abnormal": 0, "crashed": 1},
        "users": {"total": 2, "crashed": 1},
        "crash_free_sessions": sessions,
        "crash_free_users": users,
        "adoption": {"sessions": 0.4286, "users": 0.4},
    }


@pytest.mark.parametrize(
    ("sessions", "users", "expected"),
    [
        pytest.param("healthy", "healthy", "healthy", id="both-healthy"),
        pytest.param("healthy", "critical", "critical", id="the-worse-wins"),
        pytest.param("warning", "no_data", "warning", id="users-without-data"),
        pytest.param("no_data", "no_data", "no_data", id="no-data"),
    ],
)
def test_a_release_is_as_healthy_as_its_worse_rate(
    sessions: str, users: str, expected: str
) -> None:
    block = release("r", {"verdict": sessions}, {"verdict": users})
    assert verdict(block) == expected


def test_health_table() -> None:
    report = {
        "project": {"id": 2, "slug": "demo-android"},
        "releases": [release("demo@1.2.0", rate(0.5, "critical"), rate(None, "no_data"))],
    }
    header, row = health_table([report])
    assert header.split()[:4] == ["PROJECT", "RELEASE", "SESSIONS", "CRASHED"]
    assert row.split()[:4] == ["demo-android", "demo@1.2.0", "2", "1"]
    assert "50.0% (9.5–90.5%, n=2)" in row
    assert row.split()[-3:] == ["-", "43%", "critical"]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(
            403,
            {
                "error": {
                    "code": "insufficient_scope",
                    "message": "The access token lacks the 'telemetry:read' scope",
                    "details": {"scopes": ["telemetry:read", "telemetry:admin"]},
                }
            },
            Refusal(
                403,
                "insufficient_scope",
                "The access token lacks the 'telemetry:read' scope",
                ("telemetry:read", "telemetry:admin"),
            ),
            id="scope",
        ),
        pytest.param(502, "<html>", Refusal(502, "", "HTTP 502"), id="not-ours"),
        pytest.param(404, {"error": "x"}, Refusal(404, "", "HTTP 404"), id="odd-shape"),
    ],
)
def test_parse_refusal(status: int, body: object, expected: Refusal) -> None:
    assert parse_refusal(status, body) == expected


@pytest.mark.parametrize(
    ("answer", "url", "granted", "says"),
    [
        pytest.param(
            Refusal(403, "insufficient_scope", "…", ("telemetry:read", "telemetry:admin")),
            URL,
            "openid offline_access",
            [
                "lacks the 'telemetry:read' scope (it was granted: openid offline_access)",
                "Run `mobileplane login`",
                "first account created",
            ],
            id="scope",
        ),
        pytest.param(
            Refusal(401, "invalid_token", "Invalid access token: the token has expired"),
            "http://127.0.0.1:18080",
            None,
            ["the token has expired", "run `mobileplane login --url http://127.0.0.1:18080`"],
            id="token",
        ),
        pytest.param(
            Refusal(404, "project_not_found", "no telemetry project 'nope'"),
            URL,
            None,
            ["no telemetry project 'nope' (HTTP 404)"],
            id="other",
        ),
    ],
)
def test_a_refusal_says_what_to_do(
    answer: Refusal, url: str, granted: str | None, says: list[str]
) -> None:
    message = refusal(answer, url, granted)
    for part in says:
        assert part in message


@pytest.mark.parametrize(
    ("granted", "withheld"),
    [
        pytest.param("openid offline_access telemetry:read", [], id="all"),
        pytest.param("openid offline_access", ["telemetry:read"], id="restricted-left-out"),
        pytest.param(None, [], id="no-scope-member-means-all"),
    ],
)
def test_login_notes_scopes_not_granted(granted: str | None, withheld: list[str]) -> None:
    from mobileplane.login import not_granted

    assert not_granted("openid offline_access telemetry:read", granted) == withheld
