"""ProGuard/R8 mapping parsing and retracing (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from mobileplane.services.telemetry.proguard import (
    MappingError,
    deobfuscate_event,
    parse_mapping,
    retrace_frame,
)

MAPPING = """\
# compiler: R8
# {"id":"com.android.tools.r8.mapping","version":"2.0"}
com.example.Checkout -> a.b:
# {"id":"sourceFile","fileName":"Checkout.kt"}
    int total -> a
    1:4:void pay(int):15:18 -> a
    5:5:void charge():30:30 -> a
    5:5:void pay(int):19 -> a
    6:6:java.lang.String com.example.Util.fmt(int):7:7 -> a
    6:6:void pay(int):20 -> a
    void refund() -> b
com.example.Util -> a.c:
# {"id":"sourceFile","fileName":"Util.kt"}
    1:1:java.lang.String fmt(int):7:7 -> a
com.example.PaymentException -> a.d:
"""

MAP = parse_mapping(MAPPING)


def f(module: str, function: str, lineno: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"module": module, "function": function, "in_app": True}
    if lineno is not None:
        out["lineno"] = lineno
    return out


def short(frames: list[dict[str, Any]]) -> list[tuple[str, str, int | None, str | None]]:
    return [(x["module"], x["function"], x.get("lineno"), x.get("filename")) for x in frames]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        pytest.param(
            f("a.b", "a", 3), [("com.example.Checkout", "pay", 17, "Checkout.kt")], id="range"
        ),
        pytest.param(
            f("a.b", "a", 5),
            [
                ("com.example.Checkout", "pay", 19, "Checkout.kt"),
                ("com.example.Checkout", "charge", 30, "Checkout.kt"),
            ],
            id="inlined-outermost-first",
        ),
        pytest.param(
            f("a.b", "a", 6),
            [
                ("com.example.Checkout", "pay", 20, "Checkout.kt"),
                ("com.example.Util", "fmt", 7, "Util.kt"),
            ],
            id="inlined-from-another-class",
        ),
        pytest.param(
            f("a.b", "b"), [("com.example.Checkout", "refund", None, "Checkout.kt")], id="no-line"
        ),
        pytest.param(f("x.y", "a", 3), [("x.y", "a", 3, None)], id="unknown-class"),
    ],
)
def test_retrace(frame: dict[str, Any], expected: list[Any]) -> None:
    assert short(retrace_frame(MAP, frame)) == expected


def test_deobfuscate_event() -> None:
    event = {
        "exception": {
            "values": [
                {
                    "type": "d",
                    "module": "a",
                    "stacktrace": {
                        "frames": [f("android.app.Activity", "onCreate", 1), f("a.b", "a", 5)]
                    },
                }
            ]
        }
    }
    out = deobfuscate_event(MAP, event, "sha")
    value = out["exception"]["values"][0]
    assert (value["module"], value["type"]) == ("com.example", "PaymentException")
    assert [x["function"] for x in value["stacktrace"]["frames"]] == ["onCreate", "pay", "charge"]
    assert out["deobfuscated"] == {"proguard": "sha"}
    assert event["exception"]["values"][0]["type"] == "d"  # the input is untouched


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no class mappings"),
        ("# only a comment\n", "no class mappings"),
        ("    1:1:void a() -> b\n", "before any class"),
        ("this is not a mapping\n", "not a class mapping"),
        ("a.B -> c:\n    garbage here\n", "not a field or method"),
    ],
)
def test_bad_mapping(text: str, reason: str) -> None:
    with pytest.raises(MappingError, match=reason):
        parse_mapping(text)
