"""``mobileplane telemetry issues|health``: a platform's crashes, read back from a terminal.

Apps send crashes and sessions with a Sentry SDK; the telemetry service groups them into
issues and computes release health (docs/telemetry.md). This reads both through the gateway
with the developer's own sign-in (:func:`mobileplane.credentials.access_token`), which must
carry ``telemetry:read`` (issue 21 §3).

Pure: :func:`issue_table`, :func:`health_table` (what a person reads), :func:`refusal`
(what a refused request means and what to do about it). I/O: :class:`TelemetryReader`, one
``httpx`` client over the read routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from mobileplane.credentials import login_command, normalize_url

READ_SCOPE = "telemetry:read"
#: Titles longer than this are cut in the table (``--json`` has them whole).
TITLE_WIDTH = 72
#: Verdicts from worst to best: a release is as healthy as its worse rate.
VERDICTS = ("critical", "warning", "healthy", "no_data")


class TelemetryReadError(RuntimeError):
    """A read that did not work; the message says why and what to do next."""


@dataclass(frozen=True)
class Refusal:
    """A non-2xx answer, as the platform's error body describes it."""

    status: int
    code: str
    message: str
    scopes: tuple[str, ...] = ()


def parse_refusal(status: int, body: object) -> Refusal:
    """The kit's (and the gateway's) error shape ``{"error": {"code", "message", ...}}``."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return Refusal(status, "", f"HTTP {status}")
    details = error.get("details")
    scopes = details.get("scopes") if isinstance(details, Mapping) else None
    return Refusal(
        status,
        str(error.get("code") or ""),
        str(error.get("message") or f"HTTP {status}"),
        tuple(str(s) for s in scopes) if isinstance(scopes, list) else (),
    )


def refusal(answer: Refusal, platform_url: str, granted: str | None) -> str:
    """What to tell the user about ``answer``; ``granted`` is the stored sign-in's scope."""
    again = login_command(platform_url)
    if answer.status == 401:
        return (
            f"the platform refused the sign-in ({answer.message}): run `{again}` to sign in again"
        )
    if answer.status == 403 and answer.code == "insufficient_scope":
        needed = answer.scopes[0] if answer.scopes else READ_SCOPE
        held = f" (it was granted: {granted})" if granted else ""
        return (
            f"your sign-in lacks the {needed!r} scope{held}. Run `{again}` (it asks for "
            f"{READ_SCOPE} by default) with an account that holds it: only accounts that hold "
            "it get it; on the quick start that is the first account created (auth's "
            "AUTH_FIRST_ACCOUNT_SCOPES)"
        )
    return f"{answer.message} (HTTP {answer.status})"


# -- tables -----------------------------------------------------------------------------------


def render(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Columns aligned to their widest cell, two spaces apart; the last column unpadded."""
    table = [list(headers), *(list(r) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    return [
        "  ".join([cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]).rstrip()
        for row in table
    ]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(stamp: object) -> str:
    """``2026-11-25T12:03:09.123+00:00`` as ``2026-11-25 12:03`` (UTC, as stored)."""
    text = str(stamp or "")
    return text[:16].replace("T", " ") if len(text) >= 16 else text


def issue_table(issues: Sequence[Mapping[str, Any]]) -> list[str]:
    """Issues (each with its ``project`` slug), most recently seen first."""
    rows = [
        (
            str(i["project"]),
            str(i["id"]),
            str(i["status"]),
            str(i["event_count"]),
            str(i["user_count"]),
            _when(i["last_seen"]),
            str(i.get("last_release") or "-"),
            _cut(str(i["title"]), TITLE_WIDTH),
        )
        for i in sorted(issues, key=lambda i: str(i["last_seen"]), reverse=True)
    ]
    headers = ("PROJECT", "ISSUE", "STATUS", "EVENTS", "USERS", "LAST SEEN (UTC)", "RELEASE")
    return render((*headers, "TITLE"), rows)


def _rate(block: Mapping[str, Any]) -> str:
    """``50.0% (9.5–90.5%, n=2)``; ``-`` without data."""
    if block.get("rate") is None:
        return "-"
    low, high = float(block["low"]) * 100, float(block["high"]) * 100
    return f"{float(block['rate']) * 100:.1f}% ({low:.1f}–{high:.1f}%, n={block['n']})"


def verdict(release: Mapping[str, Any]) -> str:
    """The worse of the crash-free sessions and users verdicts (``no_data`` only if both)."""
    found = {str(release[k].get("verdict")) for k in ("crash_free_sessions", "crash_free_users")}
    return next((v for v in VERDICTS if v in found), "no_data")


def health_table(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    """Release health: ``reports`` are the service's answers, each with its ``releases``."""
    rows = []
    for report in reports:
        for release in report["releases"]:
            sessions = release["sessions"]
            rows.append(
                (
                    str(report["project"]["slug"]),
                    str(release["release"]),
                    str(sessions["total"]),
                    str(sessions["crashed"]),
                    _rate(release["crash_free_sessions"]),
                    _rate(release["crash_free_users"]),
                    f"{float(release['adoption']['sessions']) * 100:.0f}%"
                    if release["adoption"]["sessions"] is not None
                    else "-",
                    verdict(release),
                )
            )
    headers = ("PROJECT", "RELEASE", "SESSIONS", "CRASHED", "CRASH-FREE SESSIONS")
    return render((*headers, "CRASH-FREE USERS", "ADOPTION", "VERDICT"), rows)


# -- the platform -----------------------------------------------------------------------------


class TelemetryReader:
    """The telemetry read routes, through the gateway at ``platform_url``, as one signed-in
    developer; every refusal becomes a :class:`TelemetryReadError` that says what to do."""

    def __init__(
        self,
        platform_url: str,
        access_token: str,
        *,
        granted: str | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.url = normalize_url(platform_url)
        self.granted = granted
        self.http = httpx.Client(
            base_url=self.url,
            headers={"authorization": f"Bearer {access_token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TelemetryReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: Mapping[str, str | int | None] | None = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            answer = self.http.get(path, params=query)
        except httpx.HTTPError as e:
            raise TelemetryReadError(
                f"cannot reach {self.url}: {e}; is the platform up (mobileplane up)?"
            ) from None
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code != 200 or body is None:
            raise TelemetryReadError(
                refusal(parse_refusal(answer.status_code, body), self.url, self.granted)
            )
        return body

    def projects(self, only: str | None = None) -> list[dict[str, Any]]:
        """Every project (or the one named by slug or id)."""
        if only is not None:
            return [self._get(f"/telemetry/projects/{quote(only, safe='')}")]
        projects: list[dict[str, Any]] = self._get("/telemetry/projects")["projects"]
        return projects

    def issues(
        self, project: str, *, status: str | None, release: str | None, limit: int
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._get(
            f"/telemetry/projects/{quote(project, safe='')}/issues",
            {"status": status, "release": release, "limit": limit},
        )["issues"]
        return found

    def health(
        self, project: str, *, release: str | None, window: str, environment: str | None
    ) -> dict[str, Any]:
        """The project's answer with a ``releases`` list: the one release, or those seen in
        the window."""
        base = f"/telemetry/projects/{quote(project, safe='')}/releases"
        params = {"window": window, "environment": environment}
        if release is None:
            report: dict[str, Any] = self._get(base, params)
            return report
        report = self._get(f"{base}/{quote(release, safe='')}/health", params)
        report["releases"] = [report.pop("release")]
        report.pop("baseline", None)
        return report
