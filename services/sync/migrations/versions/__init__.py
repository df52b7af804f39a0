"""Revisions of the sync service's migrations."""
