"""What the platform's containers run: ``mobileplane serve <service>`` and ``mobileplane migrate``.

The operator deploys each service as ``mobileplane serve <name>`` (listening on 0.0.0.0:8080,
its settings in the environment) and migrates the database with a Job running
``mobileplane migrate`` before the services roll. This module turns those commands into a
uvicorn server and Alembic upgrades; the CLI only parses arguments.

``serve`` knows every service of the platform app (:data:`~services.platform.SERVICES`) and the
standalone ones that are not mounted there, such as the gateway (:data:`STANDALONE`).
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence

import uvicorn
from fastapi import FastAPI
from pydantic_settings import BaseSettings

from mobileplane.services.kit.envcheck import unknown_settings
from mobileplane.services.kit.migrate import (
    MigrationSet,
    current_revision,
    head_revision,
    known_revisions,
    upgrade,
)
from mobileplane.services.kit.mount import create_service_app
from mobileplane.services.kit.settings import KitSettings, SettingsError, normalize_database_url
from mobileplane.services.platform import HEALTH, SERVICES, platform_migrations

log = logging.getLogger(__name__)

#: Port every service listens on in a pod (the operator's Services target it by name ``http``).
DEFAULT_PORT = 8080


class RunnerError(Exception):
    """A command cannot run as asked; the message says what to do instead."""


def _standalone() -> Mapping[str, Callable[[], FastAPI]]:
    """Services that run only on their own (not mounted in the platform app): the gateway,
    once its package provides ``create_gateway_app``."""
    apps: dict[str, Callable[[], FastAPI]] = {}
    try:
        module = importlib.import_module("mobileplane.services.gateway.service")
    except ModuleNotFoundError:
        return apps
    factory = getattr(module, "create_gateway_app", None)
    if callable(factory):
        apps["gateway"] = factory
    return apps


def service_names() -> list[str]:
    """Every name ``serve`` accepts."""
    return sorted({s.name for s in SERVICES if s is not HEALTH} | set(_standalone()))


def build_app(name: str) -> FastAPI:
    """The FastAPI app of service ``name``, as ``serve`` runs it."""
    standalone = _standalone()
    if name in standalone:
        return standalone[name]()
    for service in SERVICES:
        if service.name == name and service is not HEALTH:
            return create_service_app(service, all_services=SERVICES)
    raise RunnerError(f"no service named {name!r}; choose one of: {', '.join(service_names())}")


def settings_classes(name: str) -> tuple[type[BaseSettings], ...]:
    """The settings classes service ``name`` reads its environment with (the kit's first)."""
    if name == "gateway":
        gateway = importlib.import_module("mobileplane.services.gateway.settings")
        return (gateway.GatewaySettings,)
    for service in SERVICES:
        if service.name == name and service is not HEALTH:
            return (KitSettings, *service.settings)
    raise RunnerError(f"no service named {name!r}; choose one of: {', '.join(service_names())}")


def check_environment(name: str, environ: Mapping[str, str]) -> None:
    """Refuse (in a pod) or warn about (elsewhere) variables with the service's prefix that
    it does not read: a misspelt setting would otherwise keep its default without a word."""
    prefix = f"{name.upper()}_"
    unknown = unknown_settings(environ, prefix, settings_classes(name))
    if not unknown:
        return
    message = (
        f"{name} does not read {', '.join(unknown)}: a misspelt setting keeps its default; "
        f"fix or remove the variable (what it reads: services/{name}/settings.py)"
    )
    # In a pod the environment is exactly what was rendered; a shell holds other variables.
    if "KUBERNETES_SERVICE_HOST" in environ:
        raise RunnerError(message)
    log.warning(message)


def serve(name: str, *, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> None:  # noqa: S104
    """Run service ``name`` until SIGTERM (uvicorn drains requests in flight first)."""
    check_environment(name, os.environ)
    app = build_app(name)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # Behind a Service/Ingress: trust X-Forwarded-* from the cluster network only when
        # the deployment says so (FORWARDED_ALLOW_IPS, uvicorn's own variable).
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        # The kit logs each request with its id; uvicorn's access log would log it twice.
        access_log=False,
        log_config=None,
        # Less than the pod's terminationGracePeriodSeconds (30 s by default).
        timeout_graceful_shutdown=20,
        server_header=False,
    )
    uvicorn.Server(config).run()


def migrate(
    database_url: str | None = None,
    *,
    migration_sets: Sequence[MigrationSet] | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Upgrade every service's schema to the head revision (idempotent, concurrency-safe)."""
    url = database_url or os.environ.get("DATABASE_URL", "")
    if not url:
        raise RunnerError("DATABASE_URL is not set: set it to the platform database's URL")
    try:
        url = normalize_database_url(url)
    except ValueError as e:
        raise RunnerError(f"DATABASE_URL {e}") from None
    for migrations in migration_sets or platform_migrations():
        echo(f"migrating {migrations.service} to {head_revision(migrations)}")
        try:
            upgrade(migrations, url)
        except SettingsError as e:  # pragma: no cover - defensive: settings errors are typed
            raise RunnerError(str(e)) from None
    echo("database is up to date")


def schema_behind(current: str | None, head: str | None, known: frozenset[str]) -> bool:
    """Whether a database at ``current`` is older than this image's ``head``. A revision the
    image does not know is a newer schema (a rollback of the image): not behind."""
    return current != head and (current is None or current in known)


def wait_for_schema(
    database_url: str | None = None,
    *,
    timeout: float = 600.0,
    interval: float = 2.0,
    migration_sets: Sequence[MigrationSet] | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Wait until the migration Job has brought every service's schema to this image's heads.

    Run as each service pod's init container: a service started on an older schema fails at
    startup (telemetry seeds its projects, say) and restarts until the Job is done; waiting
    here shows ``Init`` instead of a crash loop, and a Job that never finishes becomes one
    clear error after ``timeout``.
    """
    url = database_url or os.environ.get("DATABASE_URL", "")
    if not url:
        raise RunnerError("DATABASE_URL is not set: set it to the platform database's URL")
    sets = list(migration_sets or platform_migrations())
    deadline = time.monotonic() + timeout
    said = ""
    while True:
        try:
            behind = [
                f"{ms.service} at {current or 'no schema'} (this image: {head})"
                for ms in sets
                if schema_behind(
                    current := current_revision(ms, url),
                    head := head_revision(ms),
                    known_revisions(ms),
                )
            ]
        except Exception as e:  # unreachable or refused: say so and keep waiting
            behind = [f"the database cannot be read: {type(e).__name__}: {str(e).strip()[:200]}"]
        if not behind:
            echo("the database schema is at this image's heads")
            return
        if behind[0] != said:
            echo("waiting for the migration Job: " + behind[0])
            said = behind[0]
        if time.monotonic() > deadline:
            raise RunnerError(
                f"the schema is still behind this image after {timeout:g} s: "
                + "; ".join(behind)
                + ". Is the platform's migration Job failing? See its pod's log."
            )
        time.sleep(interval)
