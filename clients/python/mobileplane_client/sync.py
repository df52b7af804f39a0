"""The sync loop: upload the queue in order, download complete checkpoints, back off, repeat.

:meth:`SyncClient.sync_once` is one round (upload everything pending, then download until a
complete checkpoint and apply it); :meth:`SyncClient.run` repeats rounds, waking up when the
server says the user's buckets changed (server-sent events) or after a poll interval, and
backing off exponentially with jitter while the network or the server fails.

Errors are sorted by what the app can do about them: :class:`TransientError` (network, 5xx,
429: retry later, nothing lost), :class:`AuthError` (sign in again), :class:`UpgradeRequired`
(the app is too old for the server's schema), and refused writes, which are reported to
``on_rejected`` and dropped from the queue — a malformed write is an app bug, and keeping it
would block every later write of the device for ever.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from mobileplane_client.replica import Pending, Replica


class SyncError(Exception):
    """Sync cannot go on; the message says why."""


class TransientError(SyncError):
    """The network or the server failed; retry later (nothing is lost)."""


class AuthError(SyncError):
    """The access token is missing, expired or lacks the ``sync`` scope: sign in again."""


class UpgradeRequired(SyncError):
    """The server no longer serves this app's schema version: the app must be updated."""


@dataclass(frozen=True)
class Conflict:
    """A write of this device the server overrode (last writer wins, a delete, …)."""

    mutation_id: int
    table: str
    row_id: str
    column: str
    client_value: Any
    server_value: Any
    reason: str


class SyncClient:
    def __init__(
        self,
        base_url: str,
        replica: Replica,
        *,
        schema_version: int,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        on_conflict: Callable[[Conflict], None] | None = None,
        on_rejected: Callable[[Pending, str], None] | None = None,
        batch_size: int = 200,
        page_size: int = 1000,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.replica = replica
        self.schema_version = schema_version
        self.on_conflict = on_conflict or (lambda _c: None)
        self.on_rejected = on_rejected or (lambda _p, _r: None)
        self.batch_size = batch_size
        self.page_size = page_size
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            auth=auth,
            headers=dict(headers or {}),
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    # -- HTTP ------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise TransientError(f"cannot reach the server: {e}") from e
        if response.status_code in (401, 403):
            raise AuthError(_message(response))
        if response.status_code == 426:
            raise UpgradeRequired(_message(response))
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"the server answered {response.status_code}")
        return response

    # -- upload ----------------------------------------------------------------------------

    def upload(self) -> int:
        """Send every pending write not yet acknowledged; returns how many were sent."""
        sent = 0
        batch_size = self.batch_size
        while True:
            batch = self.replica.pending(after=self.replica.acked, limit=batch_size)
            if not batch:
                return sent
            response = self._call(
                "POST",
                "/sync/upload",
                json={
                    "client_id": self.replica.client_id,
                    "schema_version": self.schema_version,
                    "mutations": [p.as_mutation() for p in batch],
                },
            )
            if response.status_code == 413 and batch_size > 1:
                batch_size = max(1, batch_size // 2)
                continue
            if response.status_code == 422:
                details = _error(response).get("details") or {}
                index = details.get("index") if isinstance(details, dict) else None
                bad = batch[index] if isinstance(index, int) and index < len(batch) else batch[0]
                self.on_rejected(bad, _message(response))
                self.replica.drop_pending(bad.id)
                continue
            if response.status_code != 200:
                raise SyncError(f"upload refused ({response.status_code}): {_message(response)}")
            body = response.json()
            by_id = {p.id: p for p in batch}
            for result in body["results"]:
                for c in result.get("conflicts", []):
                    p = by_id[result["id"]]
                    self.on_conflict(
                        Conflict(
                            result["id"],
                            p.table,
                            p.row_id,
                            c["column"],
                            c.get("client_value"),
                            c.get("server_value"),
                            c["reason"],
                        )
                    )
            self.replica.set_acked(int(body["last_mutation_id"]))
            sent += len(batch)

    # -- download --------------------------------------------------------------------------

    def download(self) -> int:
        """Fetch every page up to a complete checkpoint and apply it; returns changes applied."""
        for _attempt in range(2):  # a checksum mismatch resyncs from scratch once
            params: dict[str, Any] = {
                "client_id": self.replica.client_id,
                "schema_version": self.schema_version,
                "limit": self.page_size,
            }
            if self.replica.checkpoint:
                params["checkpoint"] = self.replica.checkpoint
            changes: list[dict[str, Any]] = []
            resets: list[str] = []
            while True:
                response = self._call("GET", "/sync/download", params=params)
                if response.status_code == 400 and "checkpoint" in params:
                    params.pop("checkpoint")  # a token this server does not know: resync
                    self.replica.reset()
                    changes, resets = [], []
                    continue
                if response.status_code != 200:
                    raise SyncError(
                        f"download refused ({response.status_code}): {_message(response)}"
                    )
                body = response.json()
                changes.extend(body["changes"])
                resets.extend(body["reset_buckets"])
                if not body["has_more"]:
                    break
                params = {
                    "client_id": self.replica.client_id,
                    "schema_version": self.schema_version,
                    "cursor": body["cursor"],
                    "limit": self.page_size,
                }
            if self.replica.apply_checkpoint(changes, body["checkpoint"], resets):
                return len(changes)
        raise SyncError("the replica's checksum does not match the server's after a full resync")

    def sync_once(self) -> None:
        self.upload()
        self.download()

    # -- the loop --------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        *,
        poll_interval: float = 30.0,
        max_backoff: float = 300.0,
        wake: threading.Event | None = None,
        on_error: Callable[[SyncError], None] | None = None,
    ) -> None:
        """Sync until ``stop`` is set: after each round wait for ``wake`` (set it when the app
        writes, or from :meth:`listen`) or ``poll_interval``; back off on transient errors."""
        failures = 0
        wake = wake or threading.Event()
        while not stop.is_set():
            try:
                self.sync_once()
                failures = 0
                delay = poll_interval
            except TransientError as e:
                failures += 1
                # Full jitter (AWS architecture blog): spreads a fleet of devices reconnecting.
                delay = random.uniform(0, min(max_backoff, 0.5 * 2**failures))  # noqa: S311
                if on_error:
                    on_error(e)
            except SyncError as e:
                if on_error:
                    on_error(e)
                raise
            wake.wait(delay)
            wake.clear()

    def listen(self, wake: threading.Event, stop: threading.Event) -> None:
        """Follow the server's change notifications (``/sync/events``), setting ``wake``."""
        while not stop.is_set():
            try:
                with self._http.stream("GET", "/sync/events", timeout=None) as response:
                    for line in response.iter_lines():
                        if stop.is_set():
                            return
                        if line.startswith("event: changed"):
                            wake.set()
            except httpx.HTTPError:
                stop.wait(1.0)


def _error(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _message(response: httpx.Response) -> str:
    return str(_error(response).get("message") or response.text[:200])
