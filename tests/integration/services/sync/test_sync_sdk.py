"""The reference SDK against the real sync service: offline writes, conflicts, convergence.

The property test plays several devices of one user making random offline edits, syncing at
random, losing upload responses (the server applied the batch, the device never heard: it
re-sends it), and the server restarting — then checks that every device converges to the
server's state and that no accepted increment was lost or counted twice.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mobileplane_client import Conflict, Replica, SyncClient
from mobileplane_client.sync import TransientError

from mobileplane.services.kit.identity import Identity, identity_headers

pytestmark = pytest.mark.integration


def headers(subject: str) -> dict[str, str]:
    return identity_headers(Identity(subject, frozenset({"sync"})))


class LosesResponses(httpx.BaseTransport):
    """A network that delivers requests but drops the next N uploads' responses."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.drop_next = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.drop_next and request.url.path.endswith("/upload"):
            self.drop_next -= 1
            response.read()
            raise httpx.ReadError("connection reset while reading the response")
        return response

    def close(self) -> None:
        self.inner.close()


OPEN: list[SyncClient] = []


@pytest.fixture(autouse=True)
def close_devices() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def device(
    url: str,
    subject: str,
    conflicts: list[Conflict] | None = None,
    wall_ms: Callable[[], int] | None = None,
) -> tuple[SyncClient, LosesResponses]:
    network = LosesResponses()
    client = SyncClient(
        url,
        Replica(wall_ms=wall_ms),
        schema_version=2,
        headers=headers(subject),
        on_conflict=(conflicts.append if conflicts is not None else None),
        transport=network,
        page_size=7,
    )
    OPEN.append(client)
    return client, network


def test_offline_writes_are_visible_at_once_and_survive_sync(sync_url: str) -> None:
    phone, _ = device(sync_url, "alice")
    tablet, _ = device(sync_url, "alice")
    phone.replica.insert("notes", "n1", {"title": "milk", "tags": {"$add": ["shop"]}})
    phone.replica.increment("notes", "n1", "views")
    assert phone.replica.get("notes", "n1") == {"title": "milk", "tags": ["shop"], "views": 1}
    assert phone.replica.server_rows("notes") == {}  # nothing synced yet

    phone.sync_once()
    tablet.sync_once()
    assert tablet.replica.rows("notes") == phone.replica.rows("notes")
    assert phone.replica.pending() == []  # included in a checkpoint: out of the queue


def test_a_lost_upload_response_is_resent_and_applied_once(sync_url: str) -> None:
    phone, network = device(sync_url, "alice")
    phone.replica.insert("notes", "n1", {"title": "x"})
    phone.replica.increment("notes", "n1", "views", 5)
    network.drop_next = 1
    with pytest.raises(TransientError):
        phone.sync_once()
    phone.sync_once()
    assert phone.replica.get("notes", "n1") == {"title": "x", "views": 5}


def test_conflicts_reach_the_device_that_lost(sync_url: str) -> None:
    lost: list[Conflict] = []
    now = [int(time.time() * 1000) - 60_000]  # one wall clock for both, moved by hand

    def wall() -> int:
        return now[0]

    phone, _ = device(sync_url, "alice", wall_ms=wall)
    tablet, _ = device(sync_url, "alice", lost, wall_ms=wall)
    phone.replica.insert("notes", "n1", {"title": "base"})
    phone.sync_once()
    tablet.sync_once()
    now[0] += 1000
    tablet.replica.update("notes", "n1", {"title": "tablet's"})  # earlier stamp…
    now[0] += 1000
    phone.replica.update("notes", "n1", {"title": "phone's"})  # …later stamp
    phone.sync_once()
    tablet.sync_once()
    assert tablet.replica.get("notes", "n1") == {"title": "phone's"}
    [conflict] = lost
    assert (conflict.column, conflict.client_value, conflict.server_value) == (
        "title",
        "tablet's",
        "phone's",
    )


def test_a_malformed_write_is_reported_and_does_not_block_the_queue(sync_url: str) -> None:
    rejected: list[str] = []
    phone = SyncClient(
        sync_url,
        Replica(),
        schema_version=2,
        headers=headers("alice"),
        on_rejected=lambda p, reason: rejected.append(f"{p.row_id}: {reason}"),
    )
    OPEN.append(phone)
    phone.replica.insert("notes", "bad", {"title": 42})
    phone.replica.insert("notes", "good", {"title": "fine"})
    phone.sync_once()
    assert phone.replica.rows("notes") == {"good": {"title": "fine"}}
    assert len(rejected) == 1 and "takes text" in rejected[0]


def test_initial_sync_of_many_rows_pages(sync_url: str) -> None:
    writer, _ = device(sync_url, "alice")
    for i in range(20):  # the test server's quota
        writer.replica.insert("notes", f"n{i}", {"title": str(i)})
    writer.batch_size = 6
    writer.sync_once()
    reader, _ = device(sync_url, "alice")  # page size 7: three pages
    reader.sync_once()
    assert len(reader.replica.rows("notes")) == 20


# -- convergence (property) ------------------------------------------------------------------

ROWS = ["r1", "r2", "r3"]
step = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 2), st.sampled_from(ROWS), st.integers(0, 99)),
    st.tuples(st.just("update"), st.integers(0, 2), st.sampled_from(ROWS), st.integers(0, 1)),
    st.tuples(st.just("delete"), st.integers(0, 2), st.sampled_from(ROWS), st.just(0)),
    st.tuples(st.just("inc"), st.integers(0, 2), st.just("total"), st.integers(1, 3)),
    st.tuples(st.just("sync"), st.integers(0, 2), st.just(""), st.just(0)),
    st.tuples(st.just("lossy-sync"), st.integers(0, 2), st.just(""), st.just(0)),
    st.tuples(st.just("restart"), st.just(0), st.just(""), st.just(0)),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(step, min_size=1, max_size=25))
def test_devices_converge_and_no_accepted_write_is_lost_or_doubled(
    sync_server: Any, steps: list[tuple[str, int, str, int]]
) -> None:
    subject = f"u-{uuid.uuid4().hex[:12]}"
    devices = [device(sync_server.url, subject) for _ in range(3)]
    first = devices[0][0]
    first.replica.insert("notes", "total", {"views": {"$inc": 0}})
    first.sync_once()
    increments = 0
    for action, who, row, value in steps:
        client, network = devices[who]
        if action == "write":
            client.replica.insert("notes", row, {"title": f"{who}:{value}"})
        elif action == "update" and client.replica.get("notes", row) is not None:
            # Two values only: devices often write what another already wrote (issue 21).
            client.replica.update("notes", row, {"title": f"same-{value}"})
        elif action == "delete":
            client.replica.delete("notes", row)
        elif action == "inc":
            client.replica.increment("notes", "total", "views", value)
            increments += value
        elif action in ("sync", "lossy-sync"):
            network.drop_next = 1 if action == "lossy-sync" else 0
            with contextlib.suppress(TransientError):  # the device retries next round
                client.sync_once()
            network.drop_next = 0
        elif action == "restart":
            sync_server.restart()
    for _ in range(2):  # everyone uploads, then everyone downloads everything
        for client, _ in devices:
            client.sync_once()
    observer, _ = device(sync_server.url, subject)
    observer.sync_once()
    truth = observer.replica.rows("notes")
    for client, _ in devices:
        assert client.replica.pending() == []
        assert client.replica.rows("notes") == truth
    assert truth["total"]["views"] == increments
    while OPEN:  # hypothesis runs many examples within one test
        OPEN.pop().close()


def test_the_sync_loop_rides_out_a_server_outage(sync_server: Any) -> None:
    import threading

    phone, _ = device(sync_server.url, "alice")
    tablet, _ = device(sync_server.url, "alice")
    stop, wake = threading.Event(), threading.Event()
    errors: list[str] = []
    loop = threading.Thread(
        target=phone.run,
        args=(stop,),
        kwargs={
            "poll_interval": 0.2,
            "max_backoff": 0.5,
            "wake": wake,
            "on_error": lambda e: errors.append(type(e).__name__),
        },
        daemon=True,
    )
    sync_server.stop()  # offline from the start
    loop.start()
    try:
        phone.replica.insert("notes", "n1", {"title": "written offline"})
        wake.set()
        deadline = time.monotonic() + 5
        while not errors and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "TransientError" in errors  # it tried, failed, and backs off
        sync_server.start()
        deadline = time.monotonic() + 15
        while phone.replica.pending() and time.monotonic() < deadline:
            wake.set()
            time.sleep(0.1)
        assert phone.replica.pending() == []
    finally:
        stop.set()
        wake.set()
        loop.join(10)
    tablet.sync_once()
    assert tablet.replica.get("notes", "n1") == {"title": "written offline"}
