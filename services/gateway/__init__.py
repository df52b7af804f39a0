"""The API gateway: the platform's one public entry point (routing, tokens, limits, proxying)."""
