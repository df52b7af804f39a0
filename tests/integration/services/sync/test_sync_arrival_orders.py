"""Arrival order never changes the outcome: random schedules of three devices, real server.

Issue 21 found, from outside, schedules in which the final row depended on which device
uploaded first, and one in which an acknowledged write was lost. Here every example is a set of
writes by three devices (inserts, updates and deletes of two rows, on last-writer-wins,
counter and set columns, with few distinct values and timestamps packed into a few
milliseconds, so writes tie on value, land between two deletes and race deletes). The same
writes are uploaded by two users' devices in two different interleavings (each device's own
queue in order, as the protocol requires), and each user's final rows, downloaded by a fresh
device, must equal each other and the pure merge (:mod:`mobileplane.services.sync.merge`) of
the writes in timestamp order. One example plays ten schedules at once, each on rows of its
own (the uploads carry all ten: an interleaving of the whole is one of each), so that a
thousand schedules take a hundred examples' requests.

The number of schedules: ``MOBILEPLANE_SYNC_SCHEDULES`` (1,000 in ``make test``); for a
longer hunt, ``MOBILEPLANE_SYNC_SCHEDULES=10000 .venv/bin/pytest
tests/integration/services/sync/test_sync_arrival_orders.py`` (docs/development.md).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.uvicorn_server import ServerHandle

from mobileplane.services.kit.identity import Identity, identity_headers
from mobileplane.services.sync.hlc import Timestamp
from mobileplane.services.sync.merge import Op, Row, merge

pytestmark = pytest.mark.integration

SCHEDULES = int(os.environ.get("MOBILEPLANE_SYNC_SCHEDULES", "1000"))
PER_EXAMPLE = 10
RESOLVERS = {"views": "counter", "tags": "set"}  # as in the SCHEMA of conftest.py
DEVICES = ("A", "B", "C")
ROWS = ("r1", "r2")
# An hour in the past: far from the drift limit, and the same for every example.
BASE_MILLIS = int(time.time() * 1000) - 3_600_000

values = st.fixed_dictionaries(
    {},
    optional={
        "title": st.sampled_from(["a", "b"]),
        "done": st.booleans(),
        "views": st.builds(lambda n: {"$inc": n}, st.integers(1, 2)),
        "tags": st.builds(
            lambda add, rem: {"$add": add, "$remove": rem} if add or rem else {"$add": ["x"]},
            st.lists(st.sampled_from(["x", "y"]), max_size=2, unique=True),
            st.lists(st.sampled_from(["x", "y"]), max_size=1),
        ),
    },
).filter(bool)
write = st.tuples(
    st.sampled_from(DEVICES),
    st.sampled_from(ROWS),  # made the schedule's own in `stamped`
    st.sampled_from([Op.INSERT, Op.UPDATE, Op.DELETE]),
    values,
    st.integers(1, 6),  # milliseconds after the rows were made: writes collide and interleave
)


def stamped(
    schedule: int, writes: list[tuple[str, str, Op, dict[str, Any], int]]
) -> list[dict[str, Any]]:
    """Each device stamps its writes with its hybrid logical clock, in the order it made them."""
    clocks: dict[str, Timestamp] = {}
    out = []
    for device, row, op, vals, offset in writes:
        last = clocks.get(device)
        wall = BASE_MILLIS + offset
        stamp = (
            Timestamp(wall, 0, device)
            if last is None or wall > last.millis
            else Timestamp(last.millis, last.counter + 1, device)
        )
        clocks[device] = stamp
        out.append(
            {
                "device": device,
                "table": "notes",
                "row_id": f"{row}-{schedule}",
                "op": op.value,
                "values": {} if op is Op.DELETE else vals,
                "hlc": stamp.encode(),
            }
        )
    return out


def expected(row_ids: list[str], mutations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pure merge of the origin inserts and every write, in timestamp order."""
    rows: dict[str, Row] = {}
    origin = Timestamp(BASE_MILLIS, 0, "origin")
    for row_id in row_ids:
        rows[row_id] = merge(None, Op.INSERT, ORIGIN_VALUES, origin, RESOLVERS).row
    for mutation in sorted(mutations, key=lambda m: m["hlc"]):
        row_id = mutation["row_id"]
        stamp = Timestamp.decode(mutation["hlc"])
        rows[row_id] = merge(
            rows[row_id], Op(mutation["op"]), mutation["values"], stamp, RESOLVERS
        ).row
    return {row_id: row.visible() for row_id, row in rows.items() if not row.deleted}


ORIGIN_VALUES: dict[str, Any] = {"title": "origin", "views": {"$inc": 0}}


class User:
    """One user with three devices (client ids) and the uploads they have made."""

    def __init__(self, http: httpx.Client) -> None:
        self.subject = f"u-{uuid.uuid4().hex[:12]}"
        self.http = http
        self.headers = identity_headers(Identity(self.subject, frozenset({"sync"})))
        self.next_id: dict[str, int] = {}
        self.clients = {d: f"{self.subject}-{d}" for d in (*DEVICES, "origin", "observer")}

    def upload(self, device: str, mutations: list[dict[str, Any]]) -> None:
        batch = []
        for mutation in mutations:
            self.next_id[device] = self.next_id.get(device, 0) + 1
            body = {k: v for k, v in mutation.items() if k != "device"}
            batch.append({"id": self.next_id[device], **body})
        response = self.http.post(
            "/sync/upload",
            headers=self.headers,
            json={"client_id": self.clients[device], "schema_version": 2, "mutations": batch},
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["status"] for r in results if r["status"] == "duplicate"] == []

    def rows(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        token = None
        while True:
            params = {"client_id": self.clients["observer"], "schema_version": "2"}
            if token:
                params["checkpoint"] = token
            page = self.http.get("/sync/download", headers=self.headers, params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            for change in body["changes"]:
                if change["kind"] == "put":
                    found[change["row_id"]] = change["values"]
                else:
                    found.pop(change["row_id"], None)
            if not body["has_more"]:
                return found
            token = body["cursor"] or body["checkpoint"]["token"]


def interleave(mutations: list[dict[str, Any]], rnd: random.Random) -> list[list[dict[str, Any]]]:
    """A random arrival schedule: devices upload the next few writes of their own queue."""
    queues = {d: [m for m in mutations if m["device"] == d] for d in DEVICES}
    uploads = []
    while any(queues.values()):
        device = rnd.choice([d for d, q in queues.items() if q])
        take = rnd.randint(1, len(queues[device]))
        uploads.append(queues[device][:take])
        queues[device] = queues[device][take:]
    return uploads


@pytest.fixture
def sync_env(sync_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    # Ten schedules of two rows each live in one user's bucket.
    monkeypatch.setenv("SYNC_MAX_ROWS_PER_USER", "100")
    monkeypatch.setenv("SYNC_MAX_BATCH", "500")
    return {**sync_env, "SYNC_MAX_ROWS_PER_USER": "100", "SYNC_MAX_BATCH": "500"}


@settings(
    max_examples=max(1, SCHEDULES // PER_EXAMPLE),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(st.lists(write, min_size=1, max_size=9), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE),
    st.randoms(use_true_random=False),
)
def test_every_arrival_order_gives_the_rows_the_merge_rule_says(
    sync_server: ServerHandle, schedules: list[list[Any]], rnd: random.Random
) -> None:
    mutations = [m for k, writes in enumerate(schedules) for m in stamped(k, writes)]
    row_ids = [f"{r}-{k}" for k in range(len(schedules)) for r in ROWS]
    want = expected(row_ids, mutations)
    origin = Timestamp(BASE_MILLIS, 0, "origin").encode()
    made = [
        {"table": "notes", "row_id": r, "op": "insert", "values": ORIGIN_VALUES, "hlc": origin}
        for r in row_ids
    ]
    with httpx.Client(base_url=sync_server.url, timeout=30) as http:
        outcomes = []
        for _ in range(2):
            user = User(http)
            user.upload("origin", made)
            for batch in interleave(mutations, rnd):
                user.upload(batch[0]["device"], batch)
            outcomes.append(user.rows())
    assert outcomes[0] == want
    assert outcomes[1] == want
