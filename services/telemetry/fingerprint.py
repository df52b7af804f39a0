"""Issue grouping (pure): which events are "the same problem", by a versioned algorithm.

Version 1 (``FINGERPRINT_VERSION``) groups an error event by

- the type of its primary exception (the last of ``exception.values``: Sentry lists a chain
  oldest first, so the last one is what was finally raised), plus
- its top ``TOP_FRAMES`` in-app frames (the innermost, where Sentry lists frames
  outermost first), each normalised to module-or-file plus function — line numbers are left
  out so that an unrelated edit above a function does not split its issue, and generated names
  (lambdas, anonymous classes, hex addresses, numeric suffixes) are blanked;
- when no frame is marked in-app, the top frames whatever their origin; with no stack trace
  at all, the exception's normalised message; with no exception, the normalised log message.

An SDK-sent ``fingerprint`` replaces this, entry by entry: ``{{ default }}`` expands to the
components above, any other string is used as is (Sentry's custom fingerprint rules).

The hash covers the version, so a future version 2 never merges into version 1's issues by
accident: changing the algorithm means adding a version and keeping this one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FINGERPRINT_VERSION = 1
#: How many frames identify a crash site: enough to tell two callers of a helper apart, few
#: enough that a refactor deep in the stack does not split an issue (Sentry uses the whole
#: in-app stack; mobile stacks are long and recursion-heavy, so we cap it).
TOP_FRAMES = 5
DEFAULT_MARKER = "{{ default }}"

_HEX = re.compile(r"0x[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NUMBER = re.compile(r"\d+")
_LAMBDA = re.compile(r"(lambda\$|\$\$Lambda\$|\$lambda-|<lambda>|\$\d+)[\w$/-]*")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


@dataclass(frozen=True)
class Fingerprint:
    version: int
    hash: str  # hex sha256, stable across processes
    components: tuple[str, ...]  # what was hashed, for "why are these grouped?"
    custom: bool


def normalize_message(message: str) -> str:
    """A message with its variable parts blanked: ``user 42 at 0xff`` -> ``user <n> at <hex>``."""
    text = _UUID.sub("<uuid>", message)
    text = _EMAIL.sub("<email>", text)
    text = _HEX.sub("<hex>", text)
    text = _NUMBER.sub("<n>", text)
    return " ".join(text.split())[:512]


def normalize_function(name: str) -> str:
    text = _LAMBDA.sub("<lambda>", name)
    text = _HEX.sub("<hex>", text)
    return text


def frame_key(frame: Mapping[str, Any]) -> str:
    where = frame.get("module") or frame.get("filename") or frame.get("abs_path") or "?"
    where = _NUMBER.sub("<n>", normalize_function(str(where)))
    function = normalize_function(str(frame.get("function") or "?"))
    return f"{where}:{function}"


def exceptions(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = event.get("exception")
    values = raw.get("values") if isinstance(raw, Mapping) else raw
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, Mapping)]


def frames_of(value: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    stack = value.get("stacktrace")
    frames = stack.get("frames") if isinstance(stack, Mapping) else None
    if not isinstance(frames, list):
        return []
    return [f for f in frames if isinstance(f, Mapping)]


def crashed_thread_frames(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Native crashes (iOS) put the stack on the crashed thread rather than the exception."""
    raw = event.get("threads")
    values = raw.get("values") if isinstance(raw, Mapping) else raw
    if not isinstance(values, list):
        return []
    for thread in values:
        if isinstance(thread, Mapping) and thread.get("crashed"):
            return frames_of(thread)
    return []


def top_frames(frames: Sequence[Mapping[str, Any]], count: int = TOP_FRAMES) -> list[str]:
    in_app = [f for f in frames if f.get("in_app") is True]
    chosen = in_app or list(frames)
    return [frame_key(f) for f in chosen[-count:]]


def log_message(event: Mapping[str, Any]) -> str:
    entry = event.get("logentry")
    if isinstance(entry, Mapping):
        for name in ("message", "formatted"):  # the template groups better than the result
            if isinstance(entry.get(name), str):
                return str(entry[name])
    message = event.get("message")
    if isinstance(message, Mapping):
        message = message.get("message") or message.get("formatted")
    return str(message) if isinstance(message, str) else ""


def default_components(event: Mapping[str, Any]) -> list[str]:
    values = exceptions(event)
    if values:
        primary = values[-1]
        kind = str(primary.get("type") or primary.get("module") or "Error")
        frames = frames_of(primary) or crashed_thread_frames(event)
        if frames:
            return [f"type:{kind}", *(f"frame:{key}" for key in top_frames(frames))]
        return [f"type:{kind}", f"value:{normalize_message(str(primary.get('value') or ''))}"]
    frames = crashed_thread_frames(event)
    if frames:
        return [f"frame:{key}" for key in top_frames(frames)]
    return [f"message:{normalize_message(log_message(event))}"]


def fingerprint(event: Mapping[str, Any]) -> Fingerprint:
    """The group of ``event`` (an error event's JSON)."""
    custom = event.get("fingerprint")
    components: list[str]
    is_custom = False
    if isinstance(custom, list) and custom and all(isinstance(c, str) for c in custom):
        is_custom = True
        components = []
        for entry in custom:
            if entry.strip() == DEFAULT_MARKER:
                components.extend(default_components(event))
            else:
                components.append(f"custom:{entry}")
    else:
        components = default_components(event)
    digest = hashlib.sha256(f"v{FINGERPRINT_VERSION}".encode())
    for component in components:
        digest.update(b"\x00" + component.encode())
    return Fingerprint(FINGERPRINT_VERSION, digest.hexdigest(), tuple(components), is_custom)


def title(event: Mapping[str, Any]) -> str:
    """What an issue is called: ``ValueError: bad input`` or the log message."""
    values = exceptions(event)
    if values:
        primary = values[-1]
        kind = str(primary.get("type") or "Error")
        value = str(primary.get("value") or "").strip()
        return f"{kind}: {value}"[:300] if value else kind[:300]
    return (log_message(event).strip() or "<unlabeled event>")[:300]


def culprit(event: Mapping[str, Any]) -> str | None:
    """Where it happened: the innermost in-app frame (``module in function``)."""
    values = exceptions(event)
    frames = frames_of(values[-1]) if values else []
    frames = frames or crashed_thread_frames(event)
    if not frames:
        return None
    in_app = [f for f in frames if f.get("in_app") is True] or frames
    top = in_app[-1]
    where = top.get("module") or top.get("filename") or "?"
    return f"{where} in {top.get('function') or '?'}"[:300]
