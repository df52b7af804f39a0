"""SeaweedFS's pure parts: its ports, the wrapper module it is built from, its identities."""

from __future__ import annotations

import pytest

from mobileplane.stack.components.seaweedfs import (
    INTERNAL_PORTS,
    data_nodes,
    identities,
    ports,
    wrapper_gomod,
)
from mobileplane.stack.config import DEFAULT_PORTS, PORT_SPANS

UPSTREAM = """module github.com/seaweedfs/seaweedfs

go 1.26.6

require (
\tgithub.com/a/b v1.0.0
)

replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
"""

UPSTREAM_BLOCK = """module x

go 1.25

replace (
\tgithub.com/a/b => github.com/c/b v1.2.0
\tgithub.com/d/e v0.1.0 => github.com/f/e v0.2.0
)
"""


def test_ports_are_the_s3_port_and_the_span_after_it() -> None:
    got = ports(57080)
    assert got["s3.port"] == 57080
    assert sorted(got.values()) == list(range(57080, 57080 + PORT_SPANS["seaweedfs"]))
    assert len(INTERNAL_PORTS) + 1 == PORT_SPANS["seaweedfs"]
    # Every gRPC port is set: the default (HTTP + 10000) would be past 65535 here.
    assert {f for f in got if f.endswith(".grpc")} == {
        "master.port.grpc",
        "volume.port.grpc",
        "filer.port.grpc",
        "s3.port.grpc",
        "admin.port.grpc",
    }


def test_default_span_is_clear_of_other_defaults() -> None:
    span = set(ports(DEFAULT_PORTS["seaweedfs"]).values())
    others = {p for name, p in DEFAULT_PORTS.items() if name != "seaweedfs"}
    assert not span & others


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        pytest.param(
            UPSTREAM,
            "module mobileplane.local/seaweedfsbuild\n\ngo 1.26.6\n\n"
            "require github.com/seaweedfs/seaweedfs v0.0.0-1\n\n"
            "replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0\n",
            id="single-replace",
        ),
        pytest.param(
            UPSTREAM_BLOCK,
            "module mobileplane.local/seaweedfsbuild\n\ngo 1.25\n\n"
            "require github.com/seaweedfs/seaweedfs v0.0.0-1\n\n"
            "replace github.com/a/b => github.com/c/b v1.2.0\n"
            "replace github.com/d/e v0.1.0 => github.com/f/e v0.2.0\n",
            id="replace-block",
        ),
        pytest.param(
            "module x\n",
            "module mobileplane.local/seaweedfsbuild\n\ngo 1.24.0\n\n"
            "require github.com/seaweedfs/seaweedfs v0.0.0-1\n\n",
            id="no-go-line-no-replaces",
        ),
    ],
)
def test_wrapper_gomod_repeats_the_replace_directives(upstream: str, expected: str) -> None:
    assert wrapper_gomod("github.com/seaweedfs/seaweedfs", "v0.0.0-1", upstream) == expected


def test_identities_give_the_stack_credentials_admin_rights() -> None:
    (identity,) = identities("AK", "SK")["identities"]  # type: ignore[misc]
    assert identity["credentials"] == [{"accessKey": "AK", "secretKey": "SK"}]
    assert "Admin" in identity["actions"]


NODE = {"Url": "127.0.0.1:57083", "Volumes": 1}


@pytest.mark.parametrize(
    ("status", "nodes"),
    [
        pytest.param(
            {
                "Topology": {
                    "DataCenters": [
                        {"Id": "dc", "Racks": [{"Id": "r1", "DataNodes": [NODE]}]},
                        {"Id": "dc2", "Racks": [{"Id": "r2", "DataNodes": [NODE, NODE]}]},
                    ]
                }
            },
            3,
            id="nodes-across-racks",
        ),
        pytest.param({"Topology": {"DataCenters": None}}, 0, id="no-volume-server-yet"),
        pytest.param({"Topology": {"DataCenters": [{"Racks": [{}]}]}}, 0, id="empty-rack"),
        pytest.param({}, 0, id="no-topology"),
        pytest.param([], 0, id="not-an-object"),
    ],
)
def test_data_nodes_counts_the_volume_servers(status: object, nodes: int) -> None:
    assert data_nodes(status) == nodes
