"""Revisions of the telemetry service's migrations."""
