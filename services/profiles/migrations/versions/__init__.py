"""Revisions of the profiles service's migrations."""
