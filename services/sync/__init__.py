"""The sync service: offline-first replication of each user's data (see docs/sync-protocol.md)."""
