"""Revisions of the analytics service's migrations."""
