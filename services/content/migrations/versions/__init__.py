"""Revisions of the content service's migrations."""
