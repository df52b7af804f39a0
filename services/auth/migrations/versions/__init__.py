"""Revisions of the auth service's migrations."""
