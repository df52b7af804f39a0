"""The sync wire protocol's messages (docs/sync-protocol.md is their prose).

Pydantic models for requests and responses. The checkpoint token and the paging cursor are
opaque strings here; :mod:`.tokens` makes and checks them (MAC'd, issue 21 §4).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mobileplane.services.sync.merge import Op

ROW_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
CLIENT_ID_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mutation(_Strict):
    """One change a client made offline, in the order it made them."""

    id: int = Field(ge=1, description="Per client, strictly increasing: replays are no-ops.")
    table: str = Field(min_length=1, max_length=63)
    op: Op
    row_id: str = Field(pattern=ROW_ID_PATTERN)
    values: dict[str, Any] = Field(default_factory=dict)
    hlc: str = Field(description="Hybrid logical clock timestamp of the change.")


class UploadRequest(_Strict):
    client_id: str = Field(pattern=CLIENT_ID_PATTERN)
    schema_version: int = Field(ge=1)
    mutations: list[Mutation] = Field(max_length=10_000)


class ConflictOut(_Strict):
    column: str
    client_value: Any = None
    server_value: Any = None
    reason: str


class MutationResult(_Strict):
    id: int
    status: Literal["applied", "duplicate", "conflict"]
    op_id: int | None = None
    conflicts: list[ConflictOut] = Field(default_factory=list)


class UploadResponse(_Strict):
    last_mutation_id: int
    results: list[MutationResult]


class Change(_Strict):
    bucket: str
    op_id: int
    table: str
    row_id: str
    kind: Literal["put", "remove"]
    values: dict[str, Any] | None = None


class BucketCheckpoint(_Strict):
    op_id: int
    checksum: int


class Checkpoint(_Strict):
    token: str
    buckets: dict[str, BucketCheckpoint]
    last_mutation_id: int = Field(
        description="The client's last mutation included in this checkpoint (read your writes)."
    )


class DownloadResponse(_Strict):
    changes: list[Change]
    has_more: bool
    cursor: str | None = Field(None, description="Pass back to get the next page.")
    checkpoint: Checkpoint | None = Field(
        None, description="Present on the last page: apply all pages, then verify checksums."
    )
    reset_buckets: list[str] = Field(
        default_factory=list,
        description="Drop these buckets' local rows before applying: the server's changes "
        "since your checkpoint are no longer available.",
    )
