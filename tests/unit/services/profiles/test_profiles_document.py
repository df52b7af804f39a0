"""Merge patches of a profile and the rules of its members, table by table."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobileplane.services.profiles.document import (
    MAX_DEPTH,
    BadDocument,
    apply_patch,
    check_display_name,
    merge_patch,
    normalise_locale,
    parse_body,
)
from mobileplane.services.profiles.settings_schema import parse_settings_schema

SCHEMA = parse_settings_schema(None)
ZONES = frozenset({"UTC", "Europe/Paris", "America/Sao_Paulo"})
EMPTY: dict[str, Any] = {"display_name": None, "locale": None, "time_zone": None, "settings": {}}


# RFC 7396 Appendix A, every example.
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_merge_patch_follows_rfc_7396(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(json_values, st.dictionaries(st.text(max_size=3), json_values, max_size=4))
def test_a_merge_patch_is_idempotent(target: Any, patch: dict[str, Any]) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("en", "en"),
        ("pt-br", "pt-BR"),
        ("pt_BR", "pt-BR"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("sl-rozaj-biske", "sl-rozaj-biske"),
        ("de-CH-1996", "de-CH-1996"),
        ("e", None),
        ("english!", None),
        ("en-", None),
        ("en--US", None),
        ("12", None),
        ("en-US-x", None),
        ("a" * 40, None),
    ],
)
def test_locales_are_bcp47_tags_normalised(raw: str, expected: str | None) -> None:
    assert normalise_locale(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected", "problem"),
    [
        ("  Ada Lovelace ", "Ada Lovelace", None),
        ("José", "José", None),
        ("👩\u200d💻 dev", "👩\u200d💻 dev", None),
        (None, None, None),
        ("   ", None, "blank"),
        ("x" * 101, None, "at most 100"),
        ("bell\x07", None, "control"),
        ("rtl\u202eoverride", None, "control"),
        (42, None, "string"),
    ],
)
def test_display_names(raw: Any, expected: str | None, problem: str | None) -> None:
    name, found = check_display_name(raw)
    assert name == expected
    assert (found is None) == (problem is None)
    if problem:
        assert found is not None and problem in found


@pytest.mark.parametrize(
    ("patch", "paths"),
    [
        ({"display_name": "Ada"}, []),
        ({"locale": "fr-fr", "time_zone": "Europe/Paris"}, []),
        ({"settings": {"theme": "dark", "custom": 1}}, []),
        ({"locale": "not a locale"}, ["/locale"]),
        ({"locale": 7}, ["/locale"]),
        ({"time_zone": "Mars/Olympus"}, ["/time_zone"]),
        ({"time_zone": "../etc/passwd"}, ["/time_zone"]),
        ({"settings": {"theme": "pink"}}, ["/settings/theme"]),
        (
            {"settings": {"notifications": {"push": "yes", "sms": True}}},
            ["/settings/notifications", "/settings/notifications/push"],
        ),
        ({"settings": {"interests": ["a", "a"]}}, ["/settings/interests"]),
        ({"settings": "dark"}, ["/settings"]),
        ({"settings": {"blob": "x" * 20_000}}, ["/settings"]),
        ({"version": 9}, ["/version"]),
        ({"avatar": None, "nickname": "x"}, ["/avatar", "/nickname"]),
        (
            {"display_name": "", "locale": "?", "time_zone": "Nowhere"},
            ["/display_name", "/locale", "/time_zone"],
        ),
        (["display_name"], [""]),
    ],
)
def test_patches_are_checked_with_a_path_per_problem(patch: Any, paths: list[str]) -> None:
    result = apply_patch(EMPTY, patch, schema=SCHEMA, time_zones=ZONES)
    assert sorted(p.path for p in result.problems) == sorted(paths)
    assert result.ok == (not paths)


def test_a_patch_changes_only_what_it_names_and_reports_it() -> None:
    current = {**EMPTY, "display_name": "Ada", "settings": {"theme": "dark", "units": "metric"}}
    result = apply_patch(
        current,
        {"locale": "pt-br", "settings": {"units": None}, "display_name": "Ada"},
        schema=SCHEMA,
        time_zones=ZONES,
    )
    assert result.ok
    assert result.document == {
        "display_name": "Ada",
        "locale": "pt-BR",
        "time_zone": None,
        "settings": {"theme": "dark"},
    }
    assert result.changed == ("locale", "settings")


def test_null_clears_a_member_and_settings_become_empty() -> None:
    current = {**EMPTY, "display_name": "Ada", "time_zone": "UTC", "settings": {"theme": "dark"}}
    result = apply_patch(
        current,
        {"display_name": None, "time_zone": None, "settings": None},
        schema=SCHEMA,
        time_zones=ZONES,
    )
    assert result.ok
    assert result.document == EMPTY
    assert result.changed == ("display_name", "time_zone", "settings")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": 1e400}', "out of range"),
        (b'{"a": "\\u0000"}', r"U\+0000"),
        (b'{"\\u0000": 1}', r"U\+0000"),
        (b'{"a": "\\ud800"}', "surrogates"),
        (b'{"a": ' + b"[" * (MAX_DEPTH + 2) + b"]" * (MAX_DEPTH + 2) + b"}", "nested"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_bodies_a_profile_cannot_store_are_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(BadDocument, match=reason):
        parse_body(raw)


def test_ordinary_bodies_parse() -> None:
    assert parse_body(b'{"settings": {"x": [1, 2.5, true, null, "\\u00e9"]}}') == {
        "settings": {"x": [1, 2.5, True, None, "é"]}
    }
