"""The local Kubernetes control plane, decided: build files, command lines, manifests.

Pure functions of versions, paths and ports, so the whole plan is table-tested without a
cluster; :mod:`mobileplane.stack.components.kube` performs it.

The plan is envtest's (a real etcd and kube-apiserver) plus what makes workloads behave:
kube-controller-manager (Deployments, ReplicaSets, garbage collection, namespace deletion,
ServiceAccounts), kube-scheduler (binds pods) and kwok (fake nodes whose pods turn Ready).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Cluster-internal ranges. They never leave the API server: nothing routes to them here.
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.0.0.0/24"
NODE_IP = "10.0.0.1"
FAKE_NODE_NAMES = ("kwok-node-0",)
ADMIN_USER = "mobileplane-admin"
#: The annotation of the nodes kwok manages (and fakes); other nodes are left alone.
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node=fake"
#: The API server's identity towards kubelets (logs, exec): kubelet authorizes it through the
#: API server's SubjectAccessReview, which lets system:masters do everything.
KUBELET_CLIENT = ("kube-apiserver-kubelet-client", ("system:masters",))

#: kwok's own stage definitions (in its module source) that make fake nodes Ready and keep
#: them so, and walk pods through Running to deletion: what `kwokctl` uses by default.
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat/node-heartbeat.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


def kube_wrapper_gomod(version: str, staging: list[str], godebug: str | None) -> str:
    """The go.mod of a wrapper module that can build k8s.io/kubernetes' commands.

    ``go install k8s.io/kubernetes/cmd/...@v1.x`` is refused because k8s.io/kubernetes
    replaces its ~31 staging modules with local directories; the wrapper requires the same
    version and points every staging module at its published ``v0.<minor>.<patch>``.
    """
    major_minor_patch = version.removeprefix("v").split(".")
    published = f"v0.{major_minor_patch[1]}.{major_minor_patch[2]}"
    lines = ["module mobileplane.local/kubebuild", "", "go 1.24.0", ""]
    if godebug:
        lines += [godebug, ""]
    lines += [f"require k8s.io/kubernetes {version}", ""]
    lines += [f"replace {m} => {m} {published}" for m in staging]
    return "\n".join(lines) + "\n"


def kube_version_ldflags(version: str, commit: str = "0" * 40) -> str:
    """``-X`` flags so ``/version`` reports the real version (Helm and kwok read it)."""
    _, minor, _ = version.removeprefix("v").split(".")
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitCommit={commit}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


@dataclass(frozen=True)
class KubePaths:
    """Files of one control plane, all under ``root``."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def tokens(self) -> Path:
        return self.pki / "tokens.csv"

    def pem(self, name: str) -> Path:
        return self.pki / name


def etcd_argv(binary: Path, paths: KubePaths, host: str, port: int, peer_port: int) -> list[str]:
    client = f"http://{host}:{port}"
    peer = f"http://{host}:{peer_port}"
    return [
        str(binary),
        "--name=mobileplane",
        f"--data-dir={paths.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=mobileplane={peer}",
        # A test cluster: losing the last writes on a crash is acceptable, speed is not.
        "--unsafe-no-fsync",
        "--quota-backend-bytes=4294967296",
        "--log-level=warn",
    ]


def apiserver_argv(
    binary: Path, paths: KubePaths, host: str, port: int, etcd_port: int
) -> list[str]:
    return [
        str(binary),
        f"--etcd-servers=http://{host}:{etcd_port}",
        f"--bind-address={host}",
        f"--advertise-address={host}",
        f"--secure-port={port}",
        f"--tls-cert-file={paths.pem('apiserver.crt')}",
        f"--tls-private-key-file={paths.pem('apiserver.key')}",
        f"--client-ca-file={paths.pem('ca.crt')}",
        f"--token-auth-file={paths.tokens}",
        # Node: a kubelet reaches only its own pods' Secrets and ConfigMaps (with the
        # NodeRestriction admission plugin, only its own Node); RBAC: the operator's and
        # controller's Roles are really enforced.
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        # Logs, exec and port-forward go through the real node's kubelet.
        f"--kubelet-client-certificate={paths.pem('apiserver-kubelet-client.crt')}",
        f"--kubelet-client-key={paths.pem('apiserver-kubelet-client.key')}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={paths.pem('sa.pub')}",
        f"--service-account-signing-key-file={paths.pem('sa.key')}",
        "--allow-privileged=true",
        # Endpoints of the `kubernetes` Service may not be loopback addresses.
        "--endpoint-reconciler-type=none",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_argv(binary: Path, paths: KubePaths, host: str, port: int) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={paths.kubeconfig}",
        f"--authentication-kubeconfig={paths.kubeconfig}",
        f"--authorization-kubeconfig={paths.kubeconfig}",
        "--leader-elect=false",
        f"--bind-address={host}",
        f"--secure-port={port}",
        f"--service-account-private-key-file={paths.pem('sa.key')}",
        f"--root-ca-file={paths.pem('ca.crt')}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # Namespaces and garbage collection should finish within a test's patience.
        "--concurrent-gc-syncs=5",
        "--v=1",
    ]


def scheduler_argv(binary: Path, paths: KubePaths, host: str, port: int) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={paths.kubeconfig}",
        f"--authentication-kubeconfig={paths.kubeconfig}",
        f"--authorization-kubeconfig={paths.kubeconfig}",
        "--leader-elect=false",
        f"--bind-address={host}",
        f"--secure-port={port}",
        "--v=1",
    ]


def kwok_argv(binary: Path, stages: Path, paths: KubePaths, host: str, port: int) -> list[str]:
    return [
        str(binary),
        f"--config={stages}",
        f"--kubeconfig={paths.kubeconfig}",
        # Only kwok's own nodes: the real node (stack component `node`) is kubelet's.
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}",
        f"--cidr={POD_CIDR}",
        f"--node-ip={NODE_IP}",
        f"--server-address={host}:{port}",
    ]


def kubeconfig_yaml(server: str, ca_data_b64: str, token: str) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: mobileplane
  cluster:
    server: {server}
    certificate-authority-data: {ca_data_b64}
users:
- name: {ADMIN_USER}
  user:
    token: "{token}"
contexts:
- name: mobileplane
  context:
    cluster: mobileplane
    user: {ADMIN_USER}
    namespace: default
current-context: mobileplane
"""


def token_file_line(token: str) -> str:
    """A static token for the admin user, in group system:masters (cluster-admin)."""
    return f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'


def fake_node(name: str) -> dict[str, object]:
    """A Node that kwok keeps Ready; pods scheduled on it turn Running."""
    # Fake capacity, generous on purpose: tests apply many platforms at once (kubelet's 110
    # pods per node would be the first limit hit, not anything the tests are about).
    resources = {"cpu": "64", "memory": "512Gi", "pods": "1000"}
    kwok_key, kwok_value = KWOK_NODE_ANNOTATION.split("=")
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", kwok_key: kwok_value},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {"allocatable": resources, "capacity": resources},
    }
