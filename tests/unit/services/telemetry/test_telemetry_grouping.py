"""Issue grouping and release ordering (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from mobileplane.services.telemetry.fingerprint import (
    FINGERPRINT_VERSION,
    culprit,
    fingerprint,
    normalize_message,
    title,
)
from mobileplane.services.telemetry.versions import compare, is_regression


def frame(module: str, function: str, lineno: int = 1, in_app: bool = True) -> dict[str, Any]:
    return {"module": module, "function": function, "lineno": lineno, "in_app": in_app}


def error(
    kind: str, frames: list[dict[str, Any]], value: str = "boom", **extra: Any
) -> dict[str, Any]:
    return {
        "exception": {"values": [{"type": kind, "value": value, "stacktrace": {"frames": frames}}]},
        **extra,
    }


BASE = error(
    "ValueError", [frame("lib", "x", in_app=False), frame("app.a", "f"), frame("app.b", "g")]
)


@pytest.mark.parametrize(
    ("other", "same"),
    [
        pytest.param(BASE, True, id="identical"),
        pytest.param(
            error(
                "ValueError",
                [frame("lib", "x", in_app=False), frame("app.a", "f", 9), frame("app.b", "g", 77)],
                "other 42",
            ),
            True,
            id="lines-and-message-differ",
        ),
        pytest.param(
            error(
                "ValueError",
                [frame("other_lib", "y", in_app=False), frame("app.a", "f"), frame("app.b", "g")],
            ),
            True,
            id="library-frames-differ",
        ),
        pytest.param(
            error(
                "KeyError",
                [frame("lib", "x", in_app=False), frame("app.a", "f"), frame("app.b", "g")],
            ),
            False,
            id="type-differs",
        ),
        pytest.param(
            error(
                "ValueError",
                [frame("lib", "x", in_app=False), frame("app.a", "f"), frame("app.c", "g")],
            ),
            False,
            id="in-app-frame-differs",
        ),
        pytest.param({**BASE, "fingerprint": ["{{ default }}"]}, True, id="custom-default-only"),
        pytest.param({**BASE, "fingerprint": ["db-timeout"]}, False, id="custom"),
    ],
)
def test_grouping(other: dict[str, Any], same: bool) -> None:
    assert (fingerprint(other).hash == fingerprint(BASE).hash) is same


def test_custom_fingerprint_groups_across_types() -> None:
    a = error("A", [frame("app", "f")], fingerprint=["db-timeout", "{{ default }}"])
    b = error("A", [frame("app", "f", 3)], fingerprint=["db-timeout", "{{ default }}"])
    c = error("B", [frame("app", "f")], fingerprint=["db-timeout"])
    d = error("C", [frame("app", "z")], fingerprint=["db-timeout"])
    assert fingerprint(a).hash == fingerprint(b).hash
    assert fingerprint(c).hash == fingerprint(d).hash
    assert fingerprint(c).custom and fingerprint(c).components == ("custom:db-timeout",)


def test_only_top_frames_count() -> None:
    deep = [frame(f"app.m{i}", "f") for i in range(10)]
    other_bottom = [frame("app.other", "main"), *deep[1:]]
    assert fingerprint(error("E", deep)).hash == fingerprint(error("E", other_bottom)).hash


def test_lambdas_and_no_stack() -> None:
    a = error("E", [frame("app.A", "lambda$onClick$0")])
    b = error("E", [frame("app.A", "lambda$onClick$1")])
    assert fingerprint(a).hash == fingerprint(b).hash
    c = {"exception": {"values": [{"type": "E", "value": "user 12 not found"}]}}
    d = {"exception": {"values": [{"type": "E", "value": "user 99 not found"}]}}
    assert fingerprint(c).hash == fingerprint(d).hash
    msg1 = {"logentry": {"message": "order %s failed", "formatted": "order 1 failed"}}
    msg2 = {"logentry": {"message": "order %s failed", "formatted": "order 2 failed"}}
    assert fingerprint(msg1).hash == fingerprint(msg2).hash


def test_version_and_stability() -> None:
    fp = fingerprint(BASE)
    assert fp.version == FINGERPRINT_VERSION == 1
    assert fp.components == ("type:ValueError", "frame:app.a:f", "frame:app.b:g")
    # A stored hash must never change for version 1: pin it.
    assert fp.hash == fingerprint(BASE).hash and len(fp.hash) == 64


def test_native_crash_uses_crashed_thread() -> None:
    event = {
        "exception": {"values": [{"type": "EXC_BAD_ACCESS", "value": "SIGSEGV"}]},
        "threads": {
            "values": [
                {
                    "crashed": True,
                    "stacktrace": {"frames": [frame("App", "main"), frame("App", "crash")]},
                }
            ]
        },
    }
    assert fingerprint(event).components == (
        "type:EXC_BAD_ACCESS",
        "frame:App:main",
        "frame:App:crash",
    )


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("user 42 at 0xdeadbeef", "user <n> at <hex>"),
        ("id 123e4567-e89b-12d3-a456-426614174000", "id <uuid>"),
        ("mail a.b@example.com  failed", "mail <email> failed"),
    ],
)
def test_normalize_message(text: str, normalized: str) -> None:
    assert normalize_message(text) == normalized


def test_title_and_culprit() -> None:
    assert title(BASE) == "ValueError: boom"
    assert culprit(BASE) == "app.b in g"
    assert title({"message": "hello"}) == "hello"
    assert title({}) == "<unlabeled event>"
    assert culprit({}) is None


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("app@1.2.0", "app@1.2.0", 0),
        ("app@1.2.0", "app@1.10.0", -1),
        ("app@2.0.0", "app@1.99.9", 1),
        ("app@1.2.0-beta.1", "app@1.2.0", -1),
        ("app@1.2.0-beta.2", "app@1.2.0-beta.10", -1),
        ("app@1.2.0+45", "app@1.2.0+44", 1),
        ("app@1.2", "app@1.2.0", 0),
        ("1.0.0", "1.0.1", -1),
        ("app@1.0.0", "other@2.0.0", None),
        ("app@abc", "app@1.0.0", None),
        ("app@\u00b9.0", "app@1.0", None),  # a superscript one is a digit to isdigit, not int
    ],
)
def test_compare_releases(a: str, b: str, order: int | None) -> None:
    assert compare(a, b) == order


@pytest.mark.parametrize(
    ("event", "resolved_in", "after", "regressed"),
    [
        ("app@1.3.0", "app@1.2.0", True, True),
        ("app@1.2.0", "app@1.2.0", True, False),
        ("app@1.1.0", "app@1.2.0", True, False),
        ("app@1.3.0", None, True, True),
        (None, "app@1.2.0", True, True),
        ("weird", "app@1.2.0", True, True),
        ("app@1.3.0", "app@1.2.0", False, False),
    ],
)
def test_regression(
    event: str | None, resolved_in: str | None, after: bool, regressed: bool
) -> None:
    assert is_regression(event, resolved_in, seen_after_resolution=after) is regressed
