"""The services kit: what every FastAPI service of the platform shares.

Settings (``settings``), PostgreSQL (``db``, ``migrate``), Redis (``redis``), object storage
(``s3``), one error hierarchy (``errors``), structured logs and request ids (``logging``,
``context``), tracing (``telemetry``), probes (``health``) and the app factory (``app``).
"""
