"""The declared sync schema: parsing errors, write checks, version projection."""

from __future__ import annotations

from typing import Any

import pytest

from mobileplane.services.sync.schema import (
    SchemaError,
    WriteError,
    check_write,
    parse_schema,
    project,
)

SCHEMA: dict[str, Any] = {
    "version": 2,
    "minClientVersion": 1,
    "tables": {
        "todos": {
            "bucket": "user",
            "columns": {
                "title": {"type": "text"},
                "done": {"type": "boolean"},
                "likes": {"type": "integer", "resolver": "counter"},
                "tags": {"type": "array", "resolver": "set"},
                "due": {"type": "timestamp", "since": 2},
                "weight": {"type": "number"},
                "meta": {"type": "json"},
            },
        },
        "categories": {"bucket": "global", "columns": {"name": {"type": "text"}}},
    },
}


def test_a_valid_schema_parses() -> None:
    schema = parse_schema(SCHEMA)
    assert schema.version == 2 and set(schema.tables) == {"todos", "categories"}
    todos = schema.table("todos")
    assert todos.resolvers()["likes"] == "counter"
    assert "due" not in todos.columns_for(1) and "due" in todos.columns_for(2)
    assert schema.supports(1) and schema.supports(2)
    assert not schema.supports(0) and not schema.supports(3)


def broken(**changes: Any) -> dict[str, Any]:
    import copy

    schema = copy.deepcopy(SCHEMA)
    for path, value in changes.items():
        node = schema
        *parents, last = path.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return schema


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (broken(extra=1), "unknown schema keys: extra"),
        (broken(version=0), "version must be an integer"),
        (broken(minClientVersion=3), "minClientVersion cannot exceed version"),
        (broken(tables={}), "tables must be a non-empty object"),
        (broken(tables={"Bad-Name": {}}), "table names must match"),
        (broken(tables__todos__bucket="team"), "bucket must be one of user, global"),
        (broken(tables__todos__columns={}), "columns must be a non-empty object"),
        (broken(tables__todos__columns={"id": {"type": "text"}}), "not id"),
        (broken(tables__todos__columns__title={"type": "string"}), "type must be one of"),
        (broken(tables__todos__columns__title={"type": "text", "resolver": "x"}), "resolver"),
        (broken(tables__todos__columns__title={"type": "text", "resolver": "counter"}), "integer"),
        (broken(tables__todos__columns__title={"type": "text", "resolver": "set"}), "array"),
        (broken(tables__todos__columns__title={"type": "text", "since": 3}), "since cannot"),
    ],
)
def test_invalid_schemas_say_where(raw: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        parse_schema(raw)


@pytest.mark.parametrize(
    ("table", "values", "version", "message"),
    [
        ("todos", {"title": 5}, 2, "takes text, got int"),
        ("todos", {"done": "yes"}, 2, "takes boolean"),
        ("todos", {"weight": True}, 2, "takes number"),
        ("todos", {"due": "tomorrow"}, 2, "takes timestamp"),
        ("todos", {"due": "2026-11-25T10:00:00"}, 2, "takes timestamp"),  # no time zone
        ("todos", {"due": "2026-11-25T10:00:00Z"}, 1, "no column 'due'"),  # v1 lacks it
        ("todos", {"nope": 1}, 2, "no column 'nope'"),
        ("categories", {"name": "x"}, 2, "read-only for clients"),
    ],
)
def test_writes_that_do_not_fit_are_refused(
    table: str, values: dict[str, Any], version: int, message: str
) -> None:
    schema = parse_schema(SCHEMA)
    with pytest.raises(WriteError, match=message):
        check_write(schema.table(table), values, version)


def test_writes_that_fit_pass() -> None:
    schema = parse_schema(SCHEMA)
    values = {
        "title": "t",
        "done": None,
        "likes": {"$inc": 1},
        "tags": {"$add": ["x"]},
        "due": "2026-11-25T10:00:00Z",
        "weight": 1.5,
        "meta": {"any": ["thing"]},
    }
    check_write(schema.table("todos"), values, 2)


def test_unknown_tables_name_the_synced_ones() -> None:
    with pytest.raises(WriteError, match="synced tables: categories, todos"):
        parse_schema(SCHEMA).table("nope")


def test_older_clients_see_only_the_columns_they_know() -> None:
    todos = parse_schema(SCHEMA).table("todos")
    assert project(todos, {"title": "t", "due": "2026-11-25T10:00:00Z"}, 1) == {"title": "t"}
