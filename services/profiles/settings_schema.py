"""The JSON Schema that a profile's ``settings`` document must satisfy, and its checking, pure.

Apps keep per-user preferences (notifications on, theme, units...) in ``settings``; what is
allowed there is the deployment's choice, declared as a JSON Schema (draft 2020-12) in
``PROFILES_SETTINGS_SCHEMA`` or ``PROFILES_SETTINGS_SCHEMA_FILE``. A schema is checked once at
startup (an invalid one stops the service with the reason), and every stored ``settings``
document is checked against it: a violation is reported per failing path so a client can point
at the field, e.g. ``{"path": "/theme", "message": "'pink' is not one of ['light', 'dark']"}``.

Remote ``$ref`` are refused: validating a user's request must never fetch a URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as JsonSchemaError
from referencing.exceptions import Unresolvable

#: The schema used when the deployment declares none: a few common preferences, and room for
#: the app's own (``additionalProperties`` is open but bounded by the document size limit).
DEFAULT_SETTINGS_SCHEMA: Mapping[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "theme": {"enum": ["system", "light", "dark"]},
        "notifications": {
            "type": "object",
            "properties": {
                "push": {"type": "boolean"},
                "email": {"type": "boolean"},
                "marketing": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "units": {"enum": ["metric", "imperial"]},
        "interests": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 64},
            "maxItems": 50,
            "uniqueItems": True,
        },
    },
    "additionalProperties": True,
}

#: Reported problems per request: enough to fix a form, never an unbounded response.
MAX_PROBLEMS = 50


class SettingsSchemaError(Exception):
    """The configured settings schema is unusable; the message says why."""


@dataclass(frozen=True)
class Problem:
    """One violation: a JSON Pointer into the document and what is wrong there."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


def _pointer(parts: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True)
class SettingsSchema:
    """A checked schema, ready to validate documents."""

    schema: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.schema, Mapping):
            raise SettingsSchemaError("the settings schema must be a JSON object")
        try:
            Draft202012Validator.check_schema(dict(self.schema))
        except JsonSchemaError as e:
            raise SettingsSchemaError(f"not a valid JSON Schema: {e.message}") from None
        if _has_remote_ref(self.schema):
            raise SettingsSchemaError("remote $ref is not allowed: inline every definition")
        if self.schema.get("type") not in ("object", None):
            raise SettingsSchemaError('the settings schema must describe an object ("type")')

    def problems(self, document: Any) -> list[Problem]:
        """Every violation of the schema by ``document`` (empty: valid), ordered by path."""
        validator = Draft202012Validator(dict(self.schema))
        try:
            errors = sorted(
                validator.iter_errors(document), key=lambda e: (list(map(str, e.path)), e.message)
            )
        except Unresolvable as e:
            raise SettingsSchemaError(f"the settings schema has an unresolvable $ref: {e}") from e
        return [Problem(_pointer(e.absolute_path), e.message) for e in errors[:MAX_PROBLEMS]]


def _has_remote_ref(node: Any) -> bool:
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            return True
        return any(_has_remote_ref(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_remote_ref(v) for v in node)
    return False


def parse_settings_schema(source: str | Mapping[str, Any] | None) -> SettingsSchema:
    """The schema in ``source`` (JSON text or a mapping); ``None``: the default schema."""
    if source is None:
        return SettingsSchema(DEFAULT_SETTINGS_SCHEMA)
    if isinstance(source, str):
        try:
            parsed = json.loads(source)
        except ValueError as e:
            raise SettingsSchemaError(f"not valid JSON: {e}") from None
        if not isinstance(parsed, dict):
            raise SettingsSchemaError("the settings schema must be a JSON object")
        return SettingsSchema(parsed)
    return SettingsSchema(source)
