"""The ``mobileplane`` command: the quick start, the services' entry points, the local stack.

``mobileplane up`` runs the platform on an embedded default (no cluster, no root).
``mobileplane serve <service>`` and ``mobileplane migrate`` are what the operator's pods run.
``mobileplane operator`` and ``mobileplane release controller`` are what the chart's pods run.
``mobileplane login`` signs in as a native app does and keeps the sign-in; ``mobileplane token``
prints a fresh access token from it (:mod:`mobileplane.credentials`, which other commands
that call the platform use too). ``mobileplane telemetry issues|health`` read crashes and
release health back with it (:mod:`mobileplane.telemetry_reader`).
``mobileplane stack up|down|status|env`` manages the real components tests run against.
``mobileplane image build`` builds the container image without a Docker daemon.
Errors are printed with what to do next, and exit non-zero; no tracebacks for expected
failures.
"""

from __future__ import annotations

import json
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from mobileplane import __version__
from mobileplane.credentials import DEFAULT_PLATFORM_URL
from mobileplane.stack.config import ConfigError
from mobileplane.stack.errors import StackError

if TYPE_CHECKING:
    from mobileplane import telemetry_reader
    from mobileplane.image import builder as image_builder

T = TypeVar("T")


def _guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except StackError as e:
        click.echo(f"error: {e.render()}", err=True)
        sys.exit(1)
    except ConfigError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


@click.group()
@click.version_option(__version__, prog_name="mobileplane")
def main() -> None:
    """mobileplane: a Kubernetes-native backend platform for mobile apps."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to serve on.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the embedded PostgreSQL and Redis keep their data (default: one per checkout).",
)
@click.option("--verbose", is_flag=True, help="Also log one line per request on the terminal.")
def up(host: str, port: int, data_dir: Path | None, verbose: bool) -> None:
    """Run the platform locally on an embedded PostgreSQL and Redis (Ctrl-C stops it).

    Every service's logs go to the data directory's logs/ folder; the terminal shows
    warnings and errors (and with --verbose one line per request)."""
    from mobileplane.quickstart import QuickstartError, run_quickstart

    try:
        _guard(lambda: run_quickstart(host=host, port=port, data_dir=data_dir, verbose=verbose))
    except QuickstartError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)


@main.command()
@click.argument("service")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
def serve(service: str, host: str, port: int) -> None:
    """Run one service of the platform (what the operator's pods run).

    Its settings come from the environment, as the operator renders them.
    """
    from mobileplane.services.kit.settings import SettingsError
    from mobileplane.services.runner import RunnerError
    from mobileplane.services.runner import serve as run

    try:
        run(service, host=host, port=port)
    except (RunnerError, SettingsError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


@main.command()
@click.option("--database-url", envvar="DATABASE_URL", help="Defaults to $DATABASE_URL.")
@click.option(
    "--wait",
    "wait_seconds",
    type=float,
    default=None,
    help="Migrate nothing: wait up to this many seconds for the schema to reach this "
    "version's (a service pod's init container, while the migration Job runs).",
)
def migrate(database_url: str | None, wait_seconds: float | None) -> None:
    """Upgrade the platform database to this version's schema (every service's migrations)."""
    from mobileplane.services.runner import RunnerError, wait_for_schema
    from mobileplane.services.runner import migrate as run

    try:
        if wait_seconds is not None:
            wait_for_schema(database_url, timeout=wait_seconds, echo=click.echo)
            return
        run(database_url, echo=click.echo)
    except RunnerError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


@main.command("login")
@click.option("--url", default=DEFAULT_PLATFORM_URL, show_default=True, help="The platform.")
@click.option("--client-id", default="dev.mobileplane.demo", show_default=True)
@click.option(
    "--scope",
    default="openid offline_access email profiles sync content telemetry:read",
    show_default=True,
    help="telemetry:read is granted only to accounts that hold it (on the quick start: the "
    "first account created); without it the sign-in works and lacks it.",
)
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening a browser.")
def login_command(url: str, client_id: str, scope: str, no_browser: bool) -> None:
    """Sign in as a native app does (PKCE, loopback redirect) and keep the sign-in.

    Prints the token response (without the refresh token, which is kept in a file of mode
    0600 under ~/.local/state/mobileplane/credentials/); `mobileplane token` then prints a
    fresh access token whenever one is needed.
    """
    from mobileplane.credentials import CredentialsError, save
    from mobileplane.login import LoginError, login, not_granted

    def show(authorize: str) -> None:
        click.echo(f"Open this URL to sign in (or create an account):\n  {authorize}", err=True)
        if not no_browser:
            webbrowser.open(authorize)

    try:
        token = login(url, client_id, scope, open_url=show)
    except LoginError as e:
        raise click.ClickException(str(e)) from None
    click.echo(json.dumps({k: v for k, v in token.items() if k != "refresh_token"}, indent=2))
    withheld = not_granted(scope, token.get("scope"))
    if withheld:
        click.echo(
            f"note: the platform did not grant {' '.join(withheld)}: restricted scopes go only "
            "to accounts that hold them (on the quick start: the first account created)",
            err=True,
        )
    try:
        kept = save(url, client_id, scope, token)
    except CredentialsError as e:
        click.echo(f"note: {e}", err=True)
        return
    option = "" if url.rstrip("/") == DEFAULT_PLATFORM_URL else f" --url {url.rstrip('/')}"
    click.echo(
        f"\nSigned in; the refresh token is kept in {kept}.\nNext:\n"
        f'  curl -H "authorization: Bearer $(mobileplane token{option})" '
        f"{url.rstrip('/')}/profiles/me",
        err=True,
    )


@main.command("token")
@click.option("--url", default=DEFAULT_PLATFORM_URL, show_default=True, help="The platform.")
def token_command(url: str) -> None:
    """Print an access token for the platform (after `mobileplane login`).

    It lasts at least 5 more minutes: the stored one while it does, else a new one from the
    kept refresh token (which is rotated and stored back). Use it as
    curl -H "authorization: Bearer $(mobileplane token)" ...
    """
    from mobileplane.credentials import CredentialsError, access_token

    try:
        click.echo(access_token(url))
    except CredentialsError as e:
        raise click.ClickException(str(e)) from None


# -- telemetry: crashes and release health, read back ------------------------------------------


@main.group()
def telemetry() -> None:
    """Crashes grouped into issues, and release health (needs the telemetry:read scope)."""


_URL = click.option("--url", default=DEFAULT_PLATFORM_URL, show_default=True, help="The platform.")
_PROJECT = click.option("--project", help="A project's slug or id (default: every project).")
_JSON = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _reader_session(url: str) -> telemetry_reader.TelemetryReader:
    from mobileplane.credentials import CredentialsError, access_token, load
    from mobileplane.telemetry_reader import TelemetryReader

    try:
        token = access_token(url)
        granted = load(url).scope
    except CredentialsError as e:
        raise click.ClickException(str(e)) from None
    return TelemetryReader(url, token, granted=granted)


@telemetry.command("issues")
@_URL
@_PROJECT
@click.option("--release", help="Only issues seen in this release (e.g. shop@1.2.0+42).")
@click.option(
    "--status",
    type=click.Choice(["unresolved", "resolved", "all"]),
    default="unresolved",
    show_default=True,
)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@_JSON
def telemetry_issues(
    url: str, project: str | None, release: str | None, status: str, limit: int, as_json: bool
) -> None:
    """Issues (crashes and errors grouped by cause), most recently seen first."""
    from mobileplane.telemetry_reader import TelemetryReadError, issue_table

    try:
        with _reader_session(url) as reader:
            issues = [
                {"project": p["slug"], **issue}
                for p in reader.projects(project)
                for issue in reader.issues(
                    str(p["id"]),
                    status=None if status == "all" else status,
                    release=release,
                    limit=limit,
                )
            ]
    except TelemetryReadError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps({"issues": issues}, indent=2))
    elif issues:
        click.echo("\n".join(issue_table(issues)))
    else:
        where = f" in release {release}" if release else ""
        click.echo(f"No {'' if status == 'all' else status + ' '}issues{where}.", err=True)


@telemetry.command("health")
@_URL
@_PROJECT
@click.option("--release", help="One release (default: every release seen in the window).")
@click.option("--window", default="24h", show_default=True, help="Sessions started within.")
@click.option("--environment", help="Only sessions of this environment (e.g. production).")
@_JSON
def telemetry_health(
    url: str,
    project: str | None,
    release: str | None,
    window: str,
    environment: str | None,
    as_json: bool,
) -> None:
    """Release health: sessions, crash-free sessions and users (95% intervals), adoption."""
    from mobileplane.telemetry_reader import TelemetryReadError, health_table

    try:
        with _reader_session(url) as reader:
            reports = [
                reader.health(str(p["id"]), release=release, window=window, environment=environment)
                for p in reader.projects(project)
            ]
    except TelemetryReadError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps({"health": reports}, indent=2))
    elif any(r["releases"] for r in reports):
        click.echo("\n".join(health_table(reports)))
    else:
        click.echo(f"No sessions in the last {window}.", err=True)


@main.group()
def stack() -> None:
    """The local stack of real components: PostgreSQL, Redis, S3, Unleash, Kubernetes, Helm."""


def _split(only: str | None) -> list[str] | None:
    return [n.strip() for n in only.split(",") if n.strip()] if only else None


@stack.command("up")
@click.option(
    "--only",
    metavar="NAMES",
    help="Comma-separated components (plus what they need), e.g. postgres,redis.",
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
def stack_up(only: str | None, quiet: bool) -> None:
    """Install (once, cached by version) and start every component; a no-op when up."""
    from mobileplane.stack import manager
    from mobileplane.stack.progress import Progress

    _guard(lambda: manager.up(_split(only), Progress(quiet=quiet)))


@stack.command("down")
@click.option("--purge", is_flag=True, help="Also delete the stack's data (not the build cache).")
def stack_down(purge: bool) -> None:
    """Stop exactly the processes `stack up` started."""
    from mobileplane.stack import manager

    stopped = _guard(lambda: manager.down(purge=purge))
    if not stopped:
        click.echo("nothing was running", err=True)


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stack_status(as_json: bool) -> None:
    """Show each component: installed, running, health. Exits 1 unless all are running."""
    from mobileplane.stack import manager

    rows = _guard(manager.status)
    if as_json:
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        for r in rows:
            state = "running" if r.running else ("stopped" if r.installed else "missing")
            click.echo(f"{r.name:<10} {state:<8} {r.detail}")
    if not all(r.running for r in rows):
        sys.exit(1)


@stack.command("env")
@click.option("--format", "fmt", type=click.Choice(["sh", "json"]), default="sh", show_default=True)
def stack_env(fmt: str) -> None:
    """Print the connection settings, e.g. eval "$(mobileplane stack env)"."""
    from mobileplane.stack import manager

    values = _guard(manager.env)
    if fmt == "json":
        click.echo(json.dumps(values, indent=2))
        return
    click.echo(manager.render_env(values), nl=False)
    ctx = manager.context()
    click.echo(f'export PATH={manager.bin_dir(ctx)}:"$PATH"')


# -- release: steer a MobileRelease ------------------------------------------------------------


@main.group()
def release() -> None:
    """Steer MobileReleases (staged rollouts) and run their controller."""


def _release_control(name: str, namespace: str, action: str) -> None:
    from mobileplane.rollout.commands import NEXT, CommandError, request
    from mobileplane.rollout.engine import Control

    control = Control(action)
    try:
        outcome = request(name, namespace, control)
    except CommandError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    click.echo(f"{action} requested for MobileRelease {namespace}/{name} (was: {outcome.before}).")
    if outcome.replaced:
        click.echo(f"note: it replaces {outcome.replaced!r}, which had not been applied yet.")
    click.echo(f"At the controller's next look {NEXT[control]}.")
    click.echo(
        f"Follow it: kubectl get mobilerelease {name} -n {namespace} -w "
        f"(events: kubectl describe mobilerelease {name} -n {namespace})"
    )


def _control_command(action: str, help_text: str) -> None:
    @release.command(action, help=help_text)
    @click.argument("name")
    @click.option("-n", "--namespace", default="default", show_default=True)
    def command(name: str, namespace: str) -> None:
        _release_control(name, namespace, action)


_control_command("promote", "Finish the current step now (approves an approval step).")
_control_command("promote-full", "Go to 100% now.")
_control_command("pause", "Hold the release where it is.")
_control_command("resume", "Continue a paused or halted release.")
_control_command("abort", "Halt the release: flags off, store halted, app-config marks it.")


_NAMESPACES = click.option(
    "--namespace", "namespaces", multiple=True, help="Watch only these (default: all)."
)
_LIVENESS = click.option(
    "--liveness",
    metavar="URL",
    help="Serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz (the chart's).",
)


def _run_kopf(module: str, namespaces: tuple[str, ...], liveness: str | None) -> None:
    """Become ``kopf run`` for one of our handler modules (pid 1 in a pod gets the signals)."""
    import os

    scope = [a for n in namespaces for a in ("--namespace", n)] or ["--all-namespaces"]
    probe = [f"--liveness={liveness}"] if liveness else []
    args = [sys.executable, "-m", "kopf", "run", *scope, *probe, "-m", module]
    os.execv(sys.executable, args)  # noqa: S606 - becomes kopf; the arguments are ours


@release.command("controller")
@_NAMESPACES
@_LIVENESS
def release_controller(namespaces: tuple[str, ...], liveness: str | None) -> None:
    """Run the release controller (kopf) in the foreground."""
    _run_kopf("mobileplane.rollout.controller", namespaces, liveness)


@main.command("operator")
@_NAMESPACES
@_LIVENESS
def operator_command(namespaces: tuple[str, ...], liveness: str | None) -> None:
    """Run the MobilePlatform operator (kopf) in the foreground (what the chart's pod runs)."""
    _run_kopf("mobileplane.operator.handlers", namespaces, liveness)


# -- image: the container image, built without a Docker daemon ---------------------------------


@main.group()
def image() -> None:
    """The mobileplane container image (the repository's Dockerfile)."""


@image.command("build")
@click.option("--rebuild", is_flag=True, help="Build the image again, ignoring every cache.")
@click.option("--refresh-base", is_flag=True, help="Make the Debian base again (new updates).")
@click.option("--quiet", is_flag=True, help="Print nothing but errors and the result.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def image_build(rebuild: bool, refresh_base: bool, quiet: bool, as_json: bool) -> None:
    """Build the image with buildah on a Debian base (cached; root; no daemon, no registry).

    The result is a docker-archive that `ctr -n k8s.io images import` (or `podman load`)
    takes, tagged ghcr.io/mobileplane/mobileplane:<version> and :content-<key>.
    """
    from mobileplane.image import builder
    from mobileplane.stack.progress import Progress

    repo = Path.cwd()
    if not (repo / "Dockerfile").is_file():
        click.echo("error: run it from the repository's root (where the Dockerfile is)", err=True)
        sys.exit(2)
    built = _guard(
        lambda: builder.build(
            repo, Progress(quiet=quiet), refresh_base=refresh_base, rebuild=rebuild
        )
    )
    _show_image(built, as_json)


@image.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def image_show(as_json: bool) -> None:
    """Where the last image built here is (exits 1 if none)."""
    from mobileplane.image import builder

    built = builder.current()
    if built is None:
        click.echo("no image built yet: mobileplane image build", err=True)
        sys.exit(1)
    _show_image(built, as_json)


def _show_image(built: image_builder.BuiltImage, as_json: bool) -> None:
    from dataclasses import asdict

    if as_json:
        click.echo(json.dumps(asdict(built), indent=2))
        return
    mib = 1024 * 1024
    click.echo(f"image:   {' '.join(built.tags)}")
    click.echo(f"archive: {built.archive}")
    click.echo(
        f"size:    {built.compressed_bytes / mib:.1f} MiB compressed, "
        f"{built.unpacked_bytes / mib:.1f} MiB unpacked"
    )
    click.echo(f"import:  ctr -n k8s.io images import {built.archive}")


if __name__ == "__main__":
    main()
