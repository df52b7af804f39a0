"""Revisions of the app-config service's migrations."""
