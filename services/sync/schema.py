"""The synced data model an app declares: tables, columns, resolvers, buckets, versions.

An app's schema is configuration (``SYNC_SCHEMA`` as JSON, or ``SYNC_SCHEMA_FILE``), not code:
the platform stores every synced row generically (see ``store.py``) and checks each write
against this declaration. Example::

    {"version": 2, "minClientVersion": 1,
     "tables": {
       "todos": {"bucket": "user",
                 "columns": {"title": {"type": "text"}, "done": {"type": "boolean"},
                             "likes": {"type": "integer", "resolver": "counter"},
                             "tags": {"type": "array", "resolver": "set"},
                             "due": {"type": "timestamp", "since": 2}}},
       "categories": {"bucket": "global", "columns": {"name": {"type": "text"}}}}}

- **Buckets** say who sees a row: ``user`` rows belong to the user who wrote them (bucket
  ``user:<sub>``) and only that user reads or writes them; ``global`` rows are read by every
  user and written only by the server (reference data). A client syncs exactly its buckets.
- **Versions**: the schema has a version; a column may say ``since`` which version added it.
  A client on version *v* gets only the columns it knows and may write only those; a client
  below ``minClientVersion`` is told to upgrade instead of being served data it would corrupt.

Pure: parse and validate with clear errors, then answer questions about writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mobileplane.services.sync.merge import RESOLVERS

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
COLUMN_TYPES = ("text", "integer", "number", "boolean", "json", "array", "timestamp")
BUCKET_KINDS = ("user", "global")


class SchemaError(ValueError):
    """The declared schema is invalid; the message says where."""


class WriteError(ValueError):
    """A client's write does not fit the schema; the message says which part and why."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    resolver: str = "lww"
    since: int = 1


@dataclass(frozen=True)
class Table:
    name: str
    bucket: str  # "user" or "global"
    columns: Mapping[str, Column]

    def resolvers(self) -> dict[str, str]:
        return {c.name: c.resolver for c in self.columns.values()}

    def columns_for(self, version: int) -> list[str]:
        return sorted(c.name for c in self.columns.values() if c.since <= version)


@dataclass(frozen=True)
class SyncSchema:
    version: int
    min_client_version: int
    tables: Mapping[str, Table]

    def table(self, name: str) -> Table:
        table = self.tables.get(name)
        if table is None:
            known = ", ".join(sorted(self.tables)) or "none"
            raise WriteError(f"unknown table {name!r} (synced tables: {known})")
        return table

    def supports(self, client_version: int) -> bool:
        return self.min_client_version <= client_version <= self.version


def user_bucket(subject: str) -> str:
    return f"user:{subject}"


GLOBAL_BUCKET = "global"


def _int(value: Any, where: str, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SchemaError(f"{where} must be an integer ≥ {minimum}")
    return value


def parse_schema(raw: Mapping[str, Any] | str) -> SyncSchema:
    """Validate a declared schema (a mapping or its JSON text)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise SchemaError(f"the sync schema is not valid JSON: {e}") from None
    if not isinstance(raw, Mapping):
        raise SchemaError("the sync schema must be a JSON object")
    unknown = set(raw) - {"version", "minClientVersion", "tables"}
    if unknown:
        raise SchemaError(f"unknown schema keys: {', '.join(sorted(unknown))}")
    version = _int(raw.get("version", 1), "version")
    minimum = _int(raw.get("minClientVersion", 1), "minClientVersion")
    if minimum > version:
        raise SchemaError("minClientVersion cannot exceed version")
    tables_raw = raw.get("tables")
    if not isinstance(tables_raw, Mapping) or not tables_raw:
        raise SchemaError("tables must be a non-empty object")
    tables: dict[str, Table] = {}
    for name, spec in tables_raw.items():
        where = f"tables.{name}"
        if not _NAME.fullmatch(name):
            raise SchemaError(f"{where}: table names must match {_NAME.pattern}")
        if not isinstance(spec, Mapping):
            raise SchemaError(f"{where} must be an object")
        bucket = spec.get("bucket", "user")
        if bucket not in BUCKET_KINDS:
            raise SchemaError(f"{where}.bucket must be one of {', '.join(BUCKET_KINDS)}")
        columns_raw = spec.get("columns")
        if not isinstance(columns_raw, Mapping) or not columns_raw:
            raise SchemaError(f"{where}.columns must be a non-empty object")
        columns: dict[str, Column] = {}
        for cname, cspec in columns_raw.items():
            cwhere = f"{where}.columns.{cname}"
            if not _NAME.fullmatch(cname) or cname == "id":
                raise SchemaError(f"{cwhere}: column names must match {_NAME.pattern}, not id")
            if not isinstance(cspec, Mapping):
                raise SchemaError(f"{cwhere} must be an object")
            ctype = cspec.get("type")
            if ctype not in COLUMN_TYPES:
                raise SchemaError(f"{cwhere}.type must be one of {', '.join(COLUMN_TYPES)}")
            resolver = cspec.get("resolver", "lww")
            if resolver not in RESOLVERS:
                raise SchemaError(f"{cwhere}.resolver must be one of {', '.join(RESOLVERS)}")
            if resolver == "counter" and ctype != "integer":
                raise SchemaError(f"{cwhere}: a counter must be an integer column")
            if resolver == "set" and ctype != "array":
                raise SchemaError(f"{cwhere}: a set must be an array column")
            since = _int(cspec.get("since", 1), f"{cwhere}.since")
            if since > version:
                raise SchemaError(f"{cwhere}.since cannot exceed the schema version")
            columns[cname] = Column(cname, ctype, resolver, since)
        tables[name] = Table(name, bucket, columns)
    return SyncSchema(version, minimum, tables)


def _check_type(column: Column, value: Any) -> None:
    if value is None:
        return  # every column is nullable
    if column.resolver in ("counter", "set"):
        return  # operator objects, checked by the resolver
    ok = {
        "text": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "json": lambda v: True,
        "array": lambda v: isinstance(v, list),
        "timestamp": _is_timestamp,
    }[column.type](value)
    if not ok:
        raise WriteError(f"column {column.name!r} takes {column.type}, got {type(value).__name__}")


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


def check_write(table: Table, values: Mapping[str, Any], client_version: int) -> None:
    """Raise :class:`WriteError` unless ``values`` fit ``table`` as a client on
    ``client_version`` knows it (and the client may write the table at all)."""
    if table.bucket == "global":
        raise WriteError(f"table {table.name!r} is read-only for clients (global bucket)")
    for name, value in values.items():
        column = table.columns.get(name)
        if column is None or column.since > client_version:
            raise WriteError(
                f"table {table.name!r} has no column {name!r} (schema v{client_version})"
            )
        _check_type(column, value)


def project(table: Table, values: Mapping[str, Any], client_version: int) -> dict[str, Any]:
    """The row as a client on ``client_version`` sees it: only the columns it knows."""
    known = set(table.columns_for(client_version))
    return {k: v for k, v in values.items() if k in known}
