"""ProGuard/R8 mapping files (pure): parse one, and retrace Android stack frames with it.

A mapping file, written by R8 or ProGuard for each release build, says what every class,
field and method was renamed to::

    com.example.Checkout -> a.b:
    # {"id":"sourceFile","fileName":"Checkout.kt"}
        1:4:void pay(int):15:18 -> a
        5:5:void charge():30:30 -> a        <- inlined into pay (same obfuscated range),
        5:5:void pay(int):19 -> a           <- called from pay's line 19

A method line is ``[obfStart:obfEnd:]returnType originalName(args)[:origStart[:origEnd]] ->
obfuscatedName``. Several lines with the same obfuscated range form an *inline chain*: the
first is the innermost method, the next its caller, and so on, so one obfuscated frame can
expand to several original frames. Original names may be qualified (``com.x.Util.fmt``) when
R8 inlined a method from another class.

Sentry's Java SDKs send frames as ``module`` (the class, fully qualified), ``function`` and
``lineno``, outermost first, and exceptions as ``type`` (simple class name) plus ``module``
(the package); :func:`deobfuscate_event` rewrites all of those and marks the event
``"deobfuscated"`` with the mapping's id. Frames from classes the mapping does not know are
left as they are.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_CLASS = re.compile(r"^(?P<orig>[^\s#][^\s]*) -> (?P<obf>[^\s:]+):\s*$")
_METHOD = re.compile(
    r"^\s+(?:(?P<s>\d+):(?P<e>\d+):)?(?P<ret>[^\s]+) (?P<name>[^\s(]+)\((?P<args>[^)]*)\)"
    r"(?::(?P<os>\d+)(?::(?P<oe>\d+))?)? -> (?P<obf>[^\s]+)\s*$"
)
_FIELD = re.compile(r"^\s+[^\s]+ [^\s(]+ -> [^\s]+\s*$")


class MappingError(ValueError):
    """The text is not a ProGuard/R8 mapping file."""


@dataclass(frozen=True)
class MethodEntry:
    original: str  # possibly qualified with another class when inlined
    obf_start: int | None
    obf_end: int | None
    orig_start: int | None
    orig_end: int | None

    def covers(self, line: int) -> bool:
        return self.obf_start is not None and self.obf_start <= line <= (self.obf_end or 0)

    def original_line(self, line: int) -> int:
        if self.obf_start is None:
            return line
        if self.orig_start is None:
            return line  # old ProGuard: the obfuscated range is the original one
        if self.orig_end is not None and (
            self.orig_end - self.orig_start == (self.obf_end or 0) - self.obf_start
        ):
            return self.orig_start + (line - self.obf_start)
        return self.orig_start


@dataclass
class ClassMapping:
    original: str
    source_file: str | None = None
    methods: dict[str, list[MethodEntry]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProguardMapping:
    classes: Mapping[str, ClassMapping]  # by obfuscated name

    def original_class(self, obfuscated: str) -> str:
        found = self.classes.get(obfuscated)
        return found.original if found else obfuscated


def parse_mapping(text: str) -> ProguardMapping:
    classes: dict[str, ClassMapping] = {}
    current: ClassMapping | None = None
    understood = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        stripped = line.strip()
        if stripped.startswith("#"):
            if current is not None and stripped[1:].strip().startswith("{"):
                _apply_comment(current, stripped[1:].strip())
            continue
        if not line[0].isspace():
            match = _CLASS.match(line)
            if match is None:
                raise MappingError(f"line {number}: not a class mapping ('a.B -> c:')")
            current = ClassMapping(match["orig"])
            classes[match["obf"]] = current
            understood += 1
            continue
        if current is None:
            raise MappingError(f"line {number}: member mapping before any class")
        match = _METHOD.match(line)
        if match is None:
            if _FIELD.match(line):
                continue
            raise MappingError(f"line {number}: not a field or method mapping")
        entry = MethodEntry(
            original=match["name"],
            obf_start=int(match["s"]) if match["s"] else None,
            obf_end=int(match["e"]) if match["e"] else None,
            orig_start=int(match["os"]) if match["os"] else None,
            orig_end=int(match["oe"]) if match["oe"] else None,
        )
        current.methods.setdefault(match["obf"], []).append(entry)
        understood += 1
    if understood == 0:
        raise MappingError("no class mappings found")
    return ProguardMapping(classes)


def _apply_comment(current: ClassMapping, text: str) -> None:
    try:
        data = json.loads(text)
    except ValueError:
        return
    if isinstance(data, dict) and data.get("id") == "sourceFile":
        name = data.get("fileName")
        if isinstance(name, str):
            current.source_file = name


def _split(original: str, owner: str) -> tuple[str, str]:
    """``com.x.Util.fmt`` -> (``com.x.Util``, ``fmt``); a bare name belongs to ``owner``."""
    if "." in original:
        cls, _, method = original.rpartition(".")
        return cls, method
    return owner, original


def retrace_frame(mapping: ProguardMapping, frame: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The original frames for one obfuscated frame, outermost first (the event's order)."""
    module = frame.get("module")
    if not isinstance(module, str) or module not in mapping.classes:
        return [dict(frame)]
    cls = mapping.classes[module]
    function = frame.get("function")
    lineno = frame.get("lineno")
    entries = cls.methods.get(function, []) if isinstance(function, str) else []
    chain: list[MethodEntry] = []
    if isinstance(lineno, int) and not isinstance(lineno, bool):
        chain = [e for e in entries if e.covers(lineno)]
    if not chain:
        unranged = [e for e in entries if e.obf_start is None] or entries
        chain = unranged[:1]
    if not chain:
        return [{**frame, "module": cls.original, **_file(cls)}]
    line = lineno if isinstance(lineno, int) and not isinstance(lineno, bool) else 0
    frames = []
    for entry in chain:  # innermost first in the file
        owner, method = _split(entry.original, cls.original)
        owner_mapping = next((c for c in mapping.classes.values() if c.original == owner), cls)
        out = {**frame, "module": owner, "function": method, **_file(owner_mapping)}
        if line:
            out["lineno"] = entry.original_line(line)
        frames.append(out)
    frames.reverse()  # events list frames outermost first
    return frames


def _file(cls: ClassMapping) -> dict[str, str]:
    return {"filename": cls.source_file} if cls.source_file else {}


def deobfuscate_event(
    mapping: ProguardMapping, event: Mapping[str, Any], mapping_id: str
) -> dict[str, Any]:
    """A copy of ``event`` with exception types and stack frames retraced."""
    out: dict[str, Any] = copy.deepcopy(dict(event))
    raw = out.get("exception")
    values = raw.get("values") if isinstance(raw, dict) else raw
    for value in values if isinstance(values, list) else []:
        if not isinstance(value, dict):
            continue
        kind, package = value.get("type"), value.get("module")
        if isinstance(kind, str):
            qualified = f"{package}.{kind}" if isinstance(package, str) and package else kind
            original = mapping.original_class(qualified)
            if original != qualified:
                value["module"], _, value["type"] = original.rpartition(".")
        _retrace_stack(mapping, value.get("stacktrace"))
    threads = out.get("threads")
    for thread in threads.get("values", []) if isinstance(threads, dict) else []:
        if isinstance(thread, dict):
            _retrace_stack(mapping, thread.get("stacktrace"))
    out["deobfuscated"] = {"proguard": mapping_id}
    return out


def _retrace_stack(mapping: ProguardMapping, stack: Any) -> None:
    if not isinstance(stack, dict) or not isinstance(stack.get("frames"), list):
        return
    frames: list[Any] = []
    for frame in stack["frames"]:
        frames.extend(retrace_frame(mapping, frame) if isinstance(frame, dict) else [frame])
    stack["frames"] = frames
