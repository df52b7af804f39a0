"""The sync service's settings (``SYNC_*``), read once at startup.

``SYNC_CHECKPOINT_KEYS`` is required, in every environment, as the auth service's signing
keys are: the operator generates it into Secret ``<name>-sync-keys``, the quick start into its
data directory, tests in their fixtures. A missing, short or placeholder key stops the
service at startup naming the variable (never a silent default key that anyone could forge
tokens with).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from mobileplane.services.kit.settings import KitSettings, Secret
from mobileplane.services.sync.schema import SchemaError, SyncSchema, parse_schema
from mobileplane.services.sync.tokens import KeyConfigError, TokenKeys, parse_keys

#: The schema served when none is configured: a small notes app, enough to try sync with the
#: quick start and the Python SDK. A real app sets SYNC_SCHEMA or SYNC_SCHEMA_FILE.
DEFAULT_SCHEMA = {
    "version": 1,
    "tables": {
        "notes": {
            "bucket": "user",
            "columns": {
                "title": {"type": "text"},
                "body": {"type": "text"},
                "done": {"type": "boolean"},
                "views": {"type": "integer", "resolver": "counter"},
                "tags": {"type": "array", "resolver": "set"},
                "due": {"type": "timestamp"},
            },
        },
        "categories": {"bucket": "global", "columns": {"name": {"type": "text"}}},
    },
}


class SyncSettings(KitSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", frozen=True
    )

    sync_schema: str | None = Field(default=None, description="The app's data model (JSON).")
    sync_schema_file: Path | None = None
    sync_max_batch: int = Field(default=500, ge=1, le=10_000)
    sync_max_rows_per_user: int = Field(default=100_000, ge=1)
    sync_page_size: int = Field(default=1000, ge=1, le=10_000)
    sync_offline_horizon_days: int = Field(default=30, ge=1)
    sync_max_clock_drift_seconds: int = Field(default=300, ge=0)
    sync_compaction_interval_seconds: int = Field(default=3600, ge=10)
    sync_checkpoint_keys: Secret = Field(
        description="Keys that MAC checkpoint tokens and cursors, comma-separated: the first "
        "signs, every one listed verifies (add the new key first to rotate; see "
        "services/sync/tokens.py)."
    )

    @field_validator("sync_checkpoint_keys")
    @classmethod
    def _checkpoint_keys(cls, value: Secret) -> Secret:
        try:
            parse_keys(value.get_secret_value())
        except KeyConfigError as e:
            raise ValueError(str(e)) from None
        return value

    def checkpoint_keys(self) -> TokenKeys:
        return parse_keys(self.sync_checkpoint_keys.get_secret_value())

    def declared_schema(self) -> SyncSchema:
        """The declared schema (raises :class:`SchemaError` saying what is wrong)."""
        if self.sync_schema and self.sync_schema_file:
            raise SchemaError("set SYNC_SCHEMA or SYNC_SCHEMA_FILE, not both")
        if self.sync_schema_file:
            try:
                text = self.sync_schema_file.read_text()
            except OSError as e:
                raise SchemaError(f"SYNC_SCHEMA_FILE cannot be read: {e}") from None
            return parse_schema(text)
        if self.sync_schema:
            return parse_schema(self.sync_schema)
        return parse_schema(json.loads(json.dumps(DEFAULT_SCHEMA)))
