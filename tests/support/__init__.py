"""Helpers shared by the test tiers: the stack's settings and per-test isolation."""
