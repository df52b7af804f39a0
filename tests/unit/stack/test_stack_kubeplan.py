"""The Kubernetes control plane's plan: wrapper go.mod, ldflags, command lines, manifests."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mobileplane.stack import kubeplan
from mobileplane.stack.gobuild import godebug_line, staging_modules
from mobileplane.stack.kubeplan import (
    ADMIN_USER,
    KubePaths,
    apiserver_argv,
    controller_manager_argv,
    etcd_argv,
    fake_node,
    kube_version_ldflags,
    kube_wrapper_gomod,
    kubeconfig_yaml,
    kwok_argv,
    scheduler_argv,
    token_file_line,
)

KUBERNETES_GOMOD = (
    Path(__file__).parent / "data" / "kubernetes-v1.34.4-go.mod.excerpt"
).read_text()

HOST = "127.0.0.1"
PATHS = KubePaths(Path("/state/kube"))
PKI = "/state/kube/pki"
KUBECONFIG = "/state/kube/kubeconfig"

# -- the wrapper go.mod ---------------------------------------------------------------------


def _directives(gomod: str) -> dict[str, list[str]]:
    """Single-line directives of a go.mod, by keyword (the wrapper uses no blocks)."""
    out: dict[str, list[str]] = {}
    for line in gomod.splitlines():
        if line.strip() and not line.startswith("//"):
            keyword, _, rest = line.partition(" ")
            out.setdefault(keyword, []).append(rest)
    return out


def _replaces(gomod: str) -> dict[str, str]:
    """``replace A => A vX`` lines as ``{A: vX}``, checking each points at its own module."""
    out: dict[str, str] = {}
    for rest in _directives(gomod).get("replace", []):
        match = re.fullmatch(r"(\S+) => (\S+) (v\S+)", rest)
        assert match, f"unexpected replace line: {rest!r}"
        old, new, version = match.groups()
        assert old == new
        assert old not in out, f"{old} replaced twice"
        out[old] = version
    return out


def test_kube_wrapper_gomod_from_the_real_kubernetes_gomod() -> None:
    staging = staging_modules(KUBERNETES_GOMOD)
    gomod = kube_wrapper_gomod("v1.34.4", staging, godebug_line(KUBERNETES_GOMOD))
    directives = _directives(gomod)

    assert directives["module"] == ["mobileplane.local/kubebuild"]
    assert directives["go"] == ["1.24.0"]
    assert directives["godebug"] == ["default=go1.24"]
    assert directives["require"] == ["k8s.io/kubernetes v1.34.4"]
    assert set(directives) == {"module", "go", "godebug", "require", "replace"}
    assert _replaces(gomod) == dict.fromkeys(staging, "v0.34.4")
    assert len(staging) == 29
    assert gomod.endswith("\n")


@pytest.mark.parametrize(
    "module",
    [
        pytest.param("k8s.io/utils", id="utils-pseudo-version"),
        pytest.param("k8s.io/kube-openapi", id="kube-openapi-pseudo-version"),
        pytest.param("k8s.io/klog/v2", id="klog"),
        pytest.param("k8s.io/system-validators", id="system-validators"),
        pytest.param("k8s.io/gengo/v2", id="gengo-indirect"),
        pytest.param("k8s.io/sample-controller", id="replaced-but-not-required"),
        pytest.param("sigs.k8s.io/json", id="sigs-k8s-io"),
    ],
)
def test_kube_wrapper_gomod_leaves_non_staging_modules_alone(module: str) -> None:
    assert module in KUBERNETES_GOMOD
    gomod = kube_wrapper_gomod(
        "v1.34.4", staging_modules(KUBERNETES_GOMOD), godebug_line(KUBERNETES_GOMOD)
    )
    assert module not in _replaces(gomod)
    assert module not in gomod


def test_kube_wrapper_gomod_go_directive_is_new_enough_for_kubernetes() -> None:
    def version(gomod: str) -> tuple[int, ...]:
        (go,) = _directives(gomod)["go"]
        return tuple(int(p) for p in go.split("."))

    wrapper = kube_wrapper_gomod("v1.34.4", [], None)
    assert version(wrapper) >= version(KUBERNETES_GOMOD)


@pytest.mark.parametrize(
    ("version", "staging", "godebug", "published"),
    [
        pytest.param("v1.34.4", ["k8s.io/api"], None, "v0.34.4", id="v1.34.4-no-godebug"),
        pytest.param(
            "v1.34.10",
            ["k8s.io/api", "k8s.io/client-go"],
            "godebug default=go1.24",
            "v0.34.10",
            id="two-digit-patch",
        ),
        pytest.param("v1.35.0", ["k8s.io/kms"], None, "v0.35.0", id="next-minor"),
        pytest.param("v1.34.4", [], None, None, id="nothing-to-replace"),
    ],
)
def test_kube_wrapper_gomod_versions(
    version: str, staging: list[str], godebug: str | None, published: str | None
) -> None:
    gomod = kube_wrapper_gomod(version, staging, godebug)
    directives = _directives(gomod)
    assert directives["require"] == [f"k8s.io/kubernetes {version}"]
    assert directives.get("godebug") == ([godebug.removeprefix("godebug ")] if godebug else None)
    assert _replaces(gomod) == {m: published for m in staging}


# -- version ldflags ------------------------------------------------------------------------


def _x_flags(ldflags: str) -> tuple[list[str], dict[str, str]]:
    """Split ldflags into the plain flags and the ``-X name=value`` assignments."""
    tokens = ldflags.split(" ")
    plain: list[str] = []
    assignments: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        if tokens[i] == "-X":
            name, _, value = tokens[i + 1].partition("=")
            assert name not in assignments, f"{name} set twice"
            assignments[name] = value
            i += 2
        else:
            plain.append(tokens[i])
            i += 1
    return plain, assignments


@pytest.mark.parametrize(
    ("args", "version", "minor", "commit"),
    [
        pytest.param(("v1.34.4",), "v1.34.4", "34", "0" * 40, id="pinned-default-commit"),
        pytest.param(("v1.35.12", "a" * 40), "v1.35.12", "35", "a" * 40, id="explicit-commit"),
    ],
)
def test_kube_version_ldflags(args: tuple[str, ...], version: str, minor: str, commit: str) -> None:
    plain, assignments = _x_flags(kube_version_ldflags(*args))
    assert plain == ["-s", "-w"]
    expected: dict[str, str] = {}
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        expected |= {
            f"{pkg}.gitVersion": version,
            f"{pkg}.gitMajor": "1",
            f"{pkg}.gitMinor": minor,
            f"{pkg}.gitCommit": commit,
            f"{pkg}.gitTreeState": "clean",
            f"{pkg}.buildDate": "1970-01-01T00:00:00Z",
        }
    assert assignments == expected


# -- paths and command lines ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(PATHS.pki, "/state/kube/pki", id="pki"),
        pytest.param(PATHS.etcd_data, "/state/kube/etcd", id="etcd-data"),
        pytest.param(PATHS.kubeconfig, KUBECONFIG, id="kubeconfig"),
        pytest.param(PATHS.tokens, f"{PKI}/tokens.csv", id="tokens"),
        pytest.param(PATHS.pem("sa.key"), f"{PKI}/sa.key", id="pem"),
    ],
)
def test_kube_paths(path: Path, expected: str) -> None:
    assert path == Path(expected)


ArgvBuilder = Callable[[], list[str]]

ARGV_CASES = [
    pytest.param(
        lambda: etcd_argv(Path("/cache/etcd/bin/etcd"), PATHS, HOST, 52379, 52380),
        "/cache/etcd/bin/etcd",
        [
            "--name=mobileplane",
            "--data-dir=/state/kube/etcd",
            "--listen-client-urls=http://127.0.0.1:52379",
            "--advertise-client-urls=http://127.0.0.1:52379",
            "--listen-peer-urls=http://127.0.0.1:52380",
            "--initial-advertise-peer-urls=http://127.0.0.1:52380",
            "--initial-cluster=mobileplane=http://127.0.0.1:52380",
            "--unsafe-no-fsync",
        ],
        id="etcd",
    ),
    pytest.param(
        lambda: apiserver_argv(Path("/cache/k/bin/kube-apiserver"), PATHS, HOST, 56443, 52379),
        "/cache/k/bin/kube-apiserver",
        [
            "--etcd-servers=http://127.0.0.1:52379",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--secure-port=56443",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={PKI}/apiserver-kubelet-client.crt",
            f"--kubelet-client-key={PKI}/apiserver-kubelet-client.key",
            f"--token-auth-file={PKI}/tokens.csv",
            f"--client-ca-file={PKI}/ca.crt",
            f"--tls-cert-file={PKI}/apiserver.crt",
            f"--tls-private-key-file={PKI}/apiserver.key",
            f"--service-account-key-file={PKI}/sa.pub",
            f"--service-account-signing-key-file={PKI}/sa.key",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/16",
        ],
        id="kube-apiserver",
    ),
    pytest.param(
        lambda: controller_manager_argv(
            Path("/cache/k/bin/kube-controller-manager"), PATHS, HOST, 50257
        ),
        "/cache/k/bin/kube-controller-manager",
        [
            f"--kubeconfig={KUBECONFIG}",
            f"--authentication-kubeconfig={KUBECONFIG}",
            f"--authorization-kubeconfig={KUBECONFIG}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=50257",
            f"--service-account-private-key-file={PKI}/sa.key",
            f"--root-ca-file={PKI}/ca.crt",
            "--service-cluster-ip-range=10.96.0.0/16",
        ],
        id="kube-controller-manager",
    ),
    pytest.param(
        lambda: scheduler_argv(Path("/cache/k/bin/kube-scheduler"), PATHS, HOST, 50259),
        "/cache/k/bin/kube-scheduler",
        [
            f"--kubeconfig={KUBECONFIG}",
            f"--authentication-kubeconfig={KUBECONFIG}",
            f"--authorization-kubeconfig={KUBECONFIG}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--secure-port=50259",
        ],
        id="kube-scheduler",
    ),
    pytest.param(
        lambda: kwok_argv(
            Path("/cache/kwok/bin/kwok"),
            Path("/cache/kwok/bin/stages.yaml"),
            PATHS,
            HOST,
            50247,
        ),
        "/cache/kwok/bin/kwok",
        [
            "--config=/cache/kwok/bin/stages.yaml",
            f"--kubeconfig={KUBECONFIG}",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.0.0.0/24",
            "--node-ip=10.0.0.1",
            "--server-address=127.0.0.1:50247",
        ],
        id="kwok",
    ),
]


def _flag_values(argv: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for arg in argv[1:]:
        name, eq, value = arg.partition("=")
        assert name not in out, f"{name} given twice"
        out[name] = value if eq else None
    return out


@pytest.mark.parametrize(("build", "binary", "flags"), ARGV_CASES)
def test_argv(build: ArgvBuilder, binary: str, flags: list[str]) -> None:
    argv = build()
    assert argv[0] == binary
    assert all(arg.startswith("--") for arg in argv[1:]), argv
    _flag_values(argv)  # no flag twice
    missing = [f for f in flags if f not in argv]
    assert not missing


def test_control_plane_processes_agree_on_keys_ca_and_service_range() -> None:
    api = _flag_values(apiserver_argv(Path("a"), PATHS, HOST, 56443, 52379))
    cm = _flag_values(controller_manager_argv(Path("c"), PATHS, HOST, 50257))
    # Tokens signed by the controller-manager are verified by the API server.
    assert cm["--service-account-private-key-file"] == api["--service-account-signing-key-file"]
    assert api["--service-account-key-file"] == str(PATHS.pem("sa.pub"))
    assert cm["--root-ca-file"] == api["--client-ca-file"]
    assert cm["--service-cluster-ip-range"] == api["--service-cluster-ip-range"]
    # The Node authorizer for kubelets, then RBAC: no AlwaysAllow behind them.
    assert api["--authorization-mode"] == "Node,RBAC"


# -- kubeconfig, token file, fake node ------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "ca", "token"),
    [
        pytest.param(
            "https://127.0.0.1:56443",
            "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUI=",
            "3f" * 24,
            id="stack-defaults",
        ),
        pytest.param("https://localhost:6443", "Q0E=", "deadbeef", id="other-server"),
    ],
)
def test_kubeconfig_yaml(server: str, ca: str, token: str) -> None:
    doc: Any = yaml.safe_load(kubeconfig_yaml(server, ca, token))

    assert doc["apiVersion"] == "v1"
    assert doc["kind"] == "Config"
    contexts = {c["name"]: c["context"] for c in doc["contexts"]}
    clusters = {c["name"]: c["cluster"] for c in doc["clusters"]}
    users = {u["name"]: u["user"] for u in doc["users"]}
    current = contexts[doc["current-context"]]
    assert clusters[current["cluster"]] == {"server": server, "certificate-authority-data": ca}
    assert users[current["user"]] == {"token": token}
    assert current["user"] == ADMIN_USER
    assert current["namespace"] == "default"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("ab" * 24, id="hex"),
        pytest.param("0123456789abcdef", id="short"),
    ],
)
def test_token_file_line(token: str) -> None:
    line = token_file_line(token)

    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert line == f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'
    # The API server reads it as CSV: token, user name, uid, then a quoted group list.
    assert list(csv.reader(io.StringIO(line))) == [
        [token, ADMIN_USER, ADMIN_USER, "system:masters"]
    ]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(kubeplan.FAKE_NODE_NAMES[0], id="default-node"),
        pytest.param("kwok-node-7", id="other-name"),
    ],
)
def test_fake_node(name: str) -> None:
    node = fake_node(name)
    doc: Any = json.loads(json.dumps(node))  # plain JSON, as sent to the API server

    assert doc["apiVersion"] == "v1"
    assert doc["kind"] == "Node"
    assert doc["metadata"]["name"] == name
    assert doc["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    labels = doc["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == name
    assert labels["type"] == "kwok"
    assert labels["kubernetes.io/os"] == "linux"
    assert doc["spec"] == {}
    status = doc["status"]
    assert status["capacity"] == status["allocatable"]
    assert set(status["capacity"]) == {"cpu", "memory", "pods"}
    assert all(isinstance(v, str) for v in status["capacity"].values())
    assert int(status["capacity"]["pods"]) > 0


def test_kwok_stage_files() -> None:
    files = kubeplan.KWOK_STAGE_FILES
    assert len(set(files)) == len(files)
    assert all(f.startswith("kustomize/stage/") and f.endswith(".yaml") for f in files)
    kinds = {f.split("/")[2] for f in files}
    assert kinds == {"node", "pod"}
