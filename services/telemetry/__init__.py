"""Crash and performance telemetry: Sentry-protocol ingestion, issues, release health, OTLP."""
