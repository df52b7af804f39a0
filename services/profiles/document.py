"""What a user may change in their profile, and how a change is applied and checked, pure.

A profile has an *editable* part — ``display_name``, ``locale``, ``time_zone`` and ``settings``
— changed with a JSON Merge Patch (RFC 7396): the patch is an object, ``null`` removes a
member, nested objects merge (so ``{"settings": {"theme": "dark"}}`` leaves the other settings
alone). Server-owned members (``subject``, ``version``, ``avatar``, timestamps) are read-only:
a patch naming one is refused rather than silently ignored, so a client learns of its mistake.

:func:`apply_patch` returns the new editable document and every problem found, each with a
JSON Pointer (``/locale``, ``/settings/theme``), so one response lists everything to fix.

Field rules:

- ``display_name``: 1–100 characters after trimming, no control characters; ``null`` clears it.
- ``locale``: a BCP 47 language tag in the common ``language[-Script][-REGION]`` shape
  (``en``, ``pt-BR``, ``zh-Hant-TW``), normalised to its conventional case.
- ``time_zone``: an IANA zone name known to the server's time-zone database
  (``Europe/Paris``); the set of known names is given by the caller, so this stays pure.
- ``settings``: an object valid against the deployment's schema (:mod:`.settings_schema`),
  at most :data:`MAX_SETTINGS_BYTES` once encoded.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from mobileplane.services.profiles.settings_schema import Problem, SettingsSchema

EDITABLE = ("display_name", "locale", "time_zone", "settings")
READ_ONLY = ("subject", "version", "avatar", "created_at", "updated_at")

DISPLAY_NAME_MAX = 100
#: 16 KiB of settings per user: preferences, not a document store (sync is for app data).
MAX_SETTINGS_BYTES = 16 * 1024
#: language (2-3 letters, or 5-8 registered), optional script (4 letters), optional region
#: (2 letters or 3 digits), optional variants (5-8 alphanumerics, or a digit + 3).
_LOCALE = re.compile(
    r"^(?P<lang>[A-Za-z]{2,3}|[A-Za-z]{5,8})"
    r"(?:-(?P<script>[A-Za-z]{4}))?"
    r"(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?"
    r"(?P<variants>(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*)$"
)
LOCALE_MAX = 35
#: Control, format, surrogate, private-use and unassigned characters: invisible or spoofing.
_FORBIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
#: Zero-width (non-)joiners are format characters that emoji sequences and some scripts need.
_JOINERS = frozenset({"\u200c", "\u200d"})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 section 2, literally: the result of applying ``patch`` to ``target``."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def normalise_locale(value: str) -> str | None:
    """``pt-br`` -> ``pt-BR``, ``zh-hant-tw`` -> ``zh-Hant-TW``; ``None`` when malformed."""
    value = value.replace("_", "-")
    if len(value) > LOCALE_MAX:
        return None
    match = _LOCALE.fullmatch(value)
    if match is None:
        return None
    parts = [match["lang"].lower()]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    parts.extend(v.lower() for v in match["variants"].split("-") if v)
    return "-".join(parts)


def check_display_name(value: Any) -> tuple[str | None, str | None]:
    """(normalised value, problem)."""
    if value is None:
        return None, None
    if not isinstance(value, str):
        return None, "must be a string or null"
    name = unicodedata.normalize("NFC", value.strip())
    if not name:
        return None, "must not be blank (send null to clear it)"
    if len(name) > DISPLAY_NAME_MAX:
        return None, f"must be at most {DISPLAY_NAME_MAX} characters"
    if any(unicodedata.category(c) in _FORBIDDEN and c not in _JOINERS for c in name):
        return None, "must not contain control, format or unassigned characters"
    return name, None


@dataclass(frozen=True)
class PatchResult:
    """The editable document after a patch, which members changed, and what is wrong."""

    document: dict[str, Any]
    changed: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def apply_patch(
    current: Mapping[str, Any],
    patch: Any,
    *,
    schema: SettingsSchema,
    time_zones: Collection[str],
) -> PatchResult:
    """Apply a merge ``patch`` to the editable part ``current`` and check the result."""
    if not isinstance(patch, Mapping):
        not_object = Problem("", "a merge patch of a profile must be a JSON object")
        return PatchResult(dict(current), (), (not_object,))
    problems: list[Problem] = []
    for name in patch:
        if name in READ_ONLY:
            problems.append(Problem(f"/{name}", "is read-only"))
        elif name not in EDITABLE:
            problems.append(Problem(f"/{name}", f"is not a profile member ({', '.join(EDITABLE)})"))
    if problems:
        return PatchResult(dict(current), (), tuple(problems))

    merged = merge_patch(dict(current), dict(patch))
    document = {name: merged.get(name) for name in EDITABLE}
    document["display_name"], name_problem = check_display_name(document["display_name"])
    if name_problem:
        problems.append(Problem("/display_name", name_problem))

    locale = document["locale"]
    if locale is not None:
        normalised = normalise_locale(locale) if isinstance(locale, str) else None
        if normalised is None:
            problems.append(Problem("/locale", "must be a BCP 47 language tag such as en or pt-BR"))
        document["locale"] = normalised

    zone = document["time_zone"]
    if zone is not None and (not isinstance(zone, str) or zone not in time_zones):
        problems.append(Problem("/time_zone", "must be an IANA time zone such as Europe/Paris"))

    settings = document["settings"]
    if settings is None:
        document["settings"] = settings = {}
    if not isinstance(settings, Mapping):
        problems.append(Problem("/settings", "must be a JSON object"))
    elif len(json.dumps(settings, separators=(",", ":"))) > MAX_SETTINGS_BYTES:
        problems.append(Problem("/settings", f"must be at most {MAX_SETTINGS_BYTES} bytes"))
    else:
        problems.extend(
            Problem("/settings" + p.path, p.message) for p in schema.problems(dict(settings))
        )

    changed = tuple(name for name in EDITABLE if document[name] != current.get(name))
    return PatchResult(document, changed, tuple(problems))


#: Nesting allowed in a patch body: settings are preferences, not trees.
MAX_DEPTH = 32


class BadDocument(ValueError):
    """A request body is not JSON a profile can hold; the message says why."""


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BadDocument(f"number {text[:40]} is out of range")
    return value


def _reject_constant(name: str) -> Any:
    raise BadDocument(f"{name} is not JSON (RFC 8259 has no {name})")


def _check_tree(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise BadDocument(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_tree(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_tree(item, depth + 1)


def _check_text(text: str) -> None:
    # PostgreSQL text and JSONB cannot hold U+0000; lone surrogates are not Unicode text.
    if "\x00" in text:
        raise BadDocument("strings must not contain U+0000")
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise BadDocument("strings must not contain lone surrogates (invalid UTF-16 escapes)")


def parse_body(raw: bytes) -> Any:
    """A JSON request body as Python data, refusing what a profile cannot store."""
    try:
        value = json.loads(raw, parse_float=_finite, parse_constant=_reject_constant)
    except BadDocument:
        raise
    except RecursionError:
        raise BadDocument(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadDocument(f"not valid JSON: {e}") from None
    _check_tree(value)
    return value
