"""Checkpoint tokens and cursors are MAC'd: only this server's, under a key it holds, pass."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from mobileplane.services.kit.settings import SettingsError, load_settings
from mobileplane.services.sync.settings import SyncSettings
from mobileplane.services.sync.tokens import (
    KeyConfigError,
    TokenError,
    TokenKeys,
    key_id,
    parse_keys,
    positions,
    seal,
    unseal,
)

CURRENT = "k" * 43
PREVIOUS = "p" * 43
RETIRED = "r" * 43
OTHER = "o" * 43

#: The server's keys after one rotation: CURRENT signs, PREVIOUS still verifies.
SERVER = parse_keys(f"{CURRENT},{PREVIOUS}")
PAYLOAD = {"global": 3, "user:alice": 42}


def _flip(text: str, index: int) -> str:
    """``text`` with the base64url character at ``index`` replaced by another."""
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def _part(token: str, n: int, change: Callable[[str], str]) -> str:
    parts = token.split(".")
    parts[n] = change(parts[n])
    return ".".join(parts)


def _unsigned(payload: dict[str, int]) -> str:
    """A token of the old format: bare base64url JSON."""
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forged(payload: dict[str, int]) -> str:
    """The current key's id, a chosen payload, and a MAC made with a key the forger has."""
    token = seal(parse_keys(OTHER), "checkpoint", payload)
    return _part(token, 1, lambda _: key_id(CURRENT.encode()))


VALID = seal(SERVER, "checkpoint", PAYLOAD)

REFUSED = {
    "payload byte altered": _part(VALID, 2, lambda p: _flip(p, 5)),
    "payload's last character altered": _part(VALID, 2, lambda p: _flip(p, len(p) - 1)),
    "payload replaced by another valid one": _part(
        VALID, 2, lambda _: seal(SERVER, "checkpoint", {"user:alice": 0}).split(".")[2]
    ),
    "MAC altered": _part(VALID, 3, lambda m: _flip(m, 0)),
    "MAC truncated": VALID[:-1],
    "MAC removed": VALID.rsplit(".", 1)[0],
    "truncated to half": VALID[: len(VALID) // 2],
    "MAC padded": VALID + "=",
    "signed with an unknown key": seal(parse_keys(OTHER), "checkpoint", PAYLOAD),
    "signed with a retired key": seal(parse_keys(RETIRED), "checkpoint", PAYLOAD),
    "forged under the current key's id": _forged(PAYLOAD),
    "key id altered": _part(VALID, 1, lambda k: _flip(k, 0)),
    "version altered": _part(VALID, 0, lambda _: "v2"),
    "garbage base64": "v1." + key_id(CURRENT.encode()) + ".!!!not*base64!!!.@@@",
    "garbage": "eyJ…",
    "empty parts": "...",
    "non-ASCII MAC": _part(VALID, 3, lambda m: "é" + m[1:]),
    "old unsigned format": _unsigned(PAYLOAD),
    "old unsigned format with dots": _unsigned(PAYLOAD) + ".x.y.z",
    "a cursor": seal(SERVER, "cursor", PAYLOAD),
}


def test_a_valid_token_gives_its_positions() -> None:
    assert positions(SERVER, VALID) == PAYLOAD
    assert VALID.startswith(f"v1.{key_id(CURRENT.encode())}.")


def test_no_token_is_nothing_synced_yet() -> None:
    assert positions(SERVER, None) == {}
    assert positions(SERVER, "") == {}


def test_a_token_under_a_previous_key_still_listed_is_accepted() -> None:
    before_rotation = seal(parse_keys(PREVIOUS), "checkpoint", PAYLOAD)
    assert positions(SERVER, before_rotation) == PAYLOAD


def test_new_tokens_are_signed_with_the_first_key() -> None:
    assert seal(SERVER, "checkpoint", PAYLOAD) == seal(parse_keys(CURRENT), "checkpoint", PAYLOAD)


@pytest.mark.parametrize("token", REFUSED.values(), ids=REFUSED.keys())
def test_anything_but_this_servers_token_is_refused(token: str) -> None:
    with pytest.raises(TokenError):
        positions(SERVER, token)


def test_refusals_say_why() -> None:
    with pytest.raises(TokenError, match="key this server does not hold"):
        positions(SERVER, REFUSED["signed with a retired key"])
    with pytest.raises(TokenError, match="MAC does not match"):
        positions(SERVER, REFUSED["payload byte altered"])
    with pytest.raises(TokenError, match="older, unsigned format"):
        positions(SERVER, REFUSED["old unsigned format"])


def test_a_checkpoint_is_not_a_cursor() -> None:
    with pytest.raises(TokenError, match="cursor"):
        unseal(SERVER, "cursor", VALID)
    cursor = seal(SERVER, "cursor", {"since": {}, "target": {}, "lmid": 0, "reset": []})
    assert unseal(SERVER, "cursor", cursor)["lmid"] == 0


def test_a_signed_payload_that_is_not_positions_is_refused() -> None:
    with pytest.raises(TokenError, match="malformed"):
        positions(SERVER, seal(SERVER, "checkpoint", {"user:alice": -1}))  # type: ignore[dict-item]


# -- keys -----------------------------------------------------------------------------------


def test_keys_are_comma_separated_first_signs() -> None:
    keys = parse_keys(f" {CURRENT} , {PREVIOUS} ")
    assert keys.signing.kid == key_id(CURRENT.encode())
    assert [k.kid for k in keys.retained] == [key_id(PREVIOUS.encode())]
    assert keys.by_kid(key_id(RETIRED.encode())) is None


def test_key_ids_are_derived_and_distinct() -> None:
    assert key_id(CURRENT.encode()) == key_id(CURRENT.encode())
    assert key_id(CURRENT.encode()) != key_id(PREVIOUS.encode())
    assert len(key_id(CURRENT.encode())) == 12


def test_keys_never_show_in_a_repr() -> None:
    assert CURRENT not in repr(SERVER)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one key"),
        ("short", "key 1 is shorter than 32"),
        (f"{CURRENT},", "key 2 is shorter"),
        (f"{CURRENT},{CURRENT}", "key 2 is listed twice"),
        ("<" + "x" * 40 + ">", "placeholder"),
    ],
)
def test_unusable_keys_are_refused(text: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match=message):
        parse_keys(text)


# -- settings -------------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/app")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.delenv("SYNC_CHECKPOINT_KEYS", raising=False)
    return monkeypatch


def test_settings_without_keys_fail_at_startup_naming_the_variable(
    env: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SettingsError, match="SYNC_CHECKPOINT_KEYS: required, not set"):
        load_settings(SyncSettings)


@pytest.mark.parametrize("value", ["changeme", "tooshort", f"{CURRENT},{CURRENT}"])
def test_settings_with_unusable_keys_fail_without_echoing_them(
    env: pytest.MonkeyPatch, value: str
) -> None:
    env.setenv("SYNC_CHECKPOINT_KEYS", value)
    with pytest.raises(SettingsError, match="SYNC_CHECKPOINT_KEYS") as raised:
        load_settings(SyncSettings)
    assert value not in str(raised.value)
    assert CURRENT not in str(raised.value)


def test_settings_give_the_keys(env: pytest.MonkeyPatch) -> None:
    env.setenv("SYNC_CHECKPOINT_KEYS", f"{CURRENT},{PREVIOUS}")
    keys = load_settings(SyncSettings).checkpoint_keys()
    assert isinstance(keys, TokenKeys)
    assert keys == SERVER
    assert CURRENT not in repr(load_settings(SyncSettings))
