"""The real worker node, decided: config files, command lines, host rules, check workload.

Pure functions of paths, ports and versions, table-tested without a node;
:mod:`mobileplane.stack.components.node` performs them. What runs (issue 13, "A real node in
the stack"): containerd (Debian's 1.6, its CRI plugin) with runc and the CNI reference
plugins, kubelet and kube-proxy built from the control plane's Kubernetes version, and
CoreDNS as a host process. The node is tainted so only pods that ask for it land there; kwok
keeps its own fake node.

Addresses:

- the pods' bridge ``mp-cni0`` is created by the stack with ``NODE_IP`` (the pods' gateway);
  it is also the node's InternalIP (kubelet refuses a loopback node IP, and a dummy interface
  cannot be made on these VMs' kernel), where kubelet, CoreDNS and NodePorts listen;
- pods reach the stack's loopback services (PostgreSQL, Redis, S3, Unleash) at ``NODE_IP``
  on the same ports: a DNAT rule per port sends them to 127.0.0.1 (``route_localnet`` on the
  bridge allows it) and an SNAT rule makes them come from 127.0.0.1, so the services' own
  loopback-only access rules (PostgreSQL's ``pg_hba.conf``) apply unchanged.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobileplane.stack.kubeplan import SERVICE_CIDR

NODE_NAME = "mobileplane-node"
#: The ``kubernetes`` Service's ClusterIP: the first address of the Service range (the API
#: server's certificate names it, see :mod:`mobileplane.stack.pki`).
KUBERNETES_SERVICE_IP = str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))
#: The pods' bridge and its address: the pods' gateway and the node's InternalIP.
BRIDGE = "mp-cni0"
NODE_IP = "10.244.0.1"
POD_SUBNET = "10.244.0.0/24"
#: What kube-proxy treats as pod traffic (traffic to Services from elsewhere is masqueraded).
CLUSTER_CIDR = "10.244.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
CNI_NETWORK = "mobileplane"
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
RUNC = Path("/usr/sbin/runc")

#: Only pods that tolerate the taint and select the label run on the real node; everything
#: else keeps going to kwok's fake node, which is fast and starts nothing.
NODE_LABEL = "mobileplane.dev/real-node"
TAINT = {"key": NODE_LABEL, "value": "true", "effect": "NoSchedule"}

#: The images the stack builds from Go source (no registry is reachable): the sandbox image
#: and the check workload's tool. ``localhost/`` names are never pulled (policy Never).
PAUSE_IMAGE = "localhost/mobileplane/pause"
PROBE_IMAGE = "localhost/mobileplane/probe"

#: The check workload: ``echo`` serves HTTP behind the Service ``echo``; ``dns-check`` is
#: Ready only while its exec readiness probe resolves the Service's name through CoreDNS and
#: gets an answer through kube-proxy's rules.
CHECK_NAMESPACE = "mobileplane-node"
CHECK_SERVICE = "echo"
CHECK_PODS = ("echo", "dns-check")
CHECK_URL = f"http://{CHECK_SERVICE}.{CHECK_NAMESPACE}.svc.{CLUSTER_DOMAIN}/"

#: Debian packages of the node (bookworm: containerd 1.6.20, runc 1.1.5, plugins 1.1.1,
#: iptables 1.8.9 with the nft backend; conntrack lets kube-proxy clear stale UDP entries).
DEBIAN_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "iptables", "conntrack")
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")

#: iptables chains of the stack's own (nat table), hooked from PREROUTING and INPUT.
DNAT_CHAIN = "MOBILEPLANE-HOSTSVC"
SNAT_CHAIN = "MOBILEPLANE-HOSTSVC-SNAT"

#: Start order; stop runs in reverse.
PROCESSES = ("containerd", "coredns", "kube-proxy", "kubelet")


@dataclass(frozen=True)
class NodePaths:
    """Files of the real node, all under ``root`` (``<state>/node``)."""

    root: Path

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd" / "config.toml"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy.yaml"

    @property
    def corefile(self) -> Path:
        return self.root / "Corefile"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    def kubeconfig(self, who: str) -> Path:
        return self.root / f"{who}.kubeconfig"


def containerd_config(paths: NodePaths, pause_image: str) -> str:
    """containerd 1.6's config (version 2): its own root, state and socket, CRI on runc."""
    return f"""version = 2
root = "{paths.containerd_root}"
state = "{paths.containerd_state}"
# Plugins that cannot work here (no btrfs, zfs, devmapper or aufs) are not even tried.
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{paths.containerd_socket}"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    # Built by the stack and imported, never pulled: no registry is reachable.
    sandbox_image = "{pause_image}"
    # No CAP_SYS_RESOURCE on these machines: a container may not be given an oom_score_adj
    # below containerd's own, or runc fails every sandbox ("can't get final child's PID").
    restrict_oom_score_adj = true
    enable_selinux = false
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "{RUNC}"
          # cgroup v1 with the cgroupfs driver, as kubelet's cgroupDriver.
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{CNI_BIN_DIR}"
      conf_dir = "{paths.cni_conf_dir}"
      max_conf_num = 1
  [plugins."io.containerd.internal.v1.opt"]
    path = "{paths.root / "containerd" / "opt"}"
"""


def cni_conflist(paths: NodePaths) -> dict[str, Any]:
    """The pods' network: a bridge with NAT to the outside, host-local addresses, hostPorts.

    The loopback interface of each pod is set up by containerd's CRI plugin itself.
    """
    return {
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                # A pod reaching itself through its own Service comes back over the bridge.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(paths.cni_ipam_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(paths: NodePaths, ca: Path, port: int, healthz_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # These machines run cgroup v1 (hybrid: v2 only at /sys/fs/cgroup/unified). kubelet
        # 1.34 warns about v1 and 1.35 refuses it unless this is false: said explicitly so an
        # upgrade keeps working here (issue 13).
        "failCgroupV1": False,
        # No systemd manages this VM's cgroups: kubelet and containerd (SystemdCgroup =
        # false) both write cgroupfs directly.
        "cgroupDriver": "cgroupfs",
        # No CAP_SYS_RESOURCE: kubelet may not lower its own oom_score_adj to -999.
        "oomScoreAdj": 0,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [NODE_IP],
        "registerWithTaints": [TAINT],
        "podLogsDir": str(paths.pod_logs),
        "failSwapOn": False,
        "serializeImagePulls": False,
        # There is no systemd-logind to delay shutdown with.
        "shutdownGracePeriod": "0s",
        "shutdownGracePeriodCriticalPods": "0s",
        # A development node on a shared disk: evict only when the disk is really full.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "5%",
            "imagefs.available": "5%",
        },
        "imageGCHighThresholdPercent": 95,
        "imageGCLowThresholdPercent": 90,
    }


def kubelet_argv(binary: Path, paths: NodePaths) -> list[str]:
    return [
        str(binary),
        f"--config={paths.kubelet_config}",
        f"--kubeconfig={paths.kubeconfig('kubelet')}",
        f"--root-dir={paths.kubelet_root}",
        f"--cert-dir={paths.kubelet_root / 'pki'}",
        f"--node-ip={NODE_IP}",
        f"--hostname-override={NODE_NAME}",
        # kubelet may set no kubernetes.io labels of its own choosing (NodeRestriction).
        f"--node-labels={NODE_LABEL}=true",
        "--v=1",
    ]


def kube_proxy_config(paths: NodePaths, healthz_port: int, metrics_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(paths.kubeconfig("kube-proxy"))},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": CLUSTER_CIDR,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        # NodePorts on the node's address only, never on the machine's own network.
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "iptables": {"localhostNodePorts": False},
        # Leave the machine's conntrack sysctls as they are (0: do not set).
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def kube_proxy_argv(binary: Path, paths: NodePaths) -> list[str]:
    return [str(binary), f"--config={paths.kube_proxy_config}", "--v=1"]


def corefile(kubeconfig: Path, health_port: int, ready_port: int) -> str:
    """CoreDNS on the node's address: cluster names from the API server, the rest upstream."""
    return f""".:53 {{
    bind {NODE_IP}
    errors
    health 127.0.0.1:{health_port}
    ready 127.0.0.1:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    forward . /etc/resolv.conf
    cache 30
    loop
}}
"""


def coredns_argv(binary: Path, paths: NodePaths) -> list[str]:
    return [str(binary), "-conf", str(paths.corefile)]


def coredns_rbac() -> list[dict[str, Any]]:
    """What CoreDNS's ``kubernetes`` plugin reads, granted to its own client certificate."""
    name = "mobileplane:coredns"
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}],
        },
    ]


#: The client certificates of the node's programs: file stem -> (user, groups). kubelet is a
#: node to the Node authorizer; kube-proxy's user has the built-in system:node-proxier role.
CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "kubelet": (f"system:node:{NODE_NAME}", ("system:nodes",)),
    "kube-proxy": ("system:kube-proxy", ()),
    "coredns": ("mobileplane:coredns", ()),
}


def client_kubeconfig(server: str, ca_b64: str, user: str, cert: Path, key: Path) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: mobileplane
  cluster:
    server: {server}
    certificate-authority-data: {ca_b64}
users:
- name: {user}
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: mobileplane
  context:
    cluster: mobileplane
    user: {user}
current-context: mobileplane
"""


# -- pods reaching the stack's host services -------------------------------------------------


def _dnat(destination: str, port: int, to: str) -> list[str]:
    match = ["-s", POD_SUBNET, "-d", destination, "-p", "tcp", "--dport", str(port)]
    return [*match, "-j", "DNAT", "--to-destination", to]


def host_service_rules(
    ports: Iterable[int], apiserver_port: int | None = None
) -> dict[str, list[list[str]]]:
    """The nat rules of the stack's chains: ``{chain: [iptables rule arguments]}``.

    A pod's connection to ``NODE_IP:port`` goes to ``127.0.0.1:port`` (where the stack's
    PostgreSQL, Redis, S3 and Unleash listen), from 127.0.0.1. With ``apiserver_port``, the
    ``kubernetes`` Service (``KUBERNETES_SERVICE_IP:443``, what in-cluster clients use) goes
    to the API server on 127.0.0.1: the Service has no endpoints (the API server listens on
    loopback, which an endpoint may not be), so kube-proxy has no nat rule for it, and its
    filter rule rejecting Services without endpoints matches the ClusterIP, which the DNAT
    here has already replaced.
    """
    dnat = [_dnat(NODE_IP, port, f"127.0.0.1:{port}") for port in sorted(set(ports))]
    if apiserver_port is not None:
        dnat.append(_dnat(KUBERNETES_SERVICE_IP, 443, f"127.0.0.1:{apiserver_port}"))
    snat = [["-s", POD_SUBNET, "-d", "127.0.0.1", "-j", "SNAT", "--to-source", "127.0.0.1"]]
    return {DNAT_CHAIN: dnat, SNAT_CHAIN: snat}


#: Where the stack's chains hook in: (built-in chain, our chain).
HOOKS = (("PREROUTING", DNAT_CHAIN), ("INPUT", SNAT_CHAIN))


def cni_leftover_rules(nat_rules: str) -> list[str]:
    """Rules of ``iptables -t nat -S`` that the bridge and portmap plugins left for our network.

    Normally CNI DEL removes them as each pod goes; after a crash ``stack down`` deletes what
    is left. The plugins comment every rule with the network's name.
    """
    marker = f'name: \\"{CNI_NETWORK}\\"'
    return [
        line
        for line in nat_rules.splitlines()
        if line.startswith("-A ") and (marker in line or f"name: {CNI_NETWORK} " in line)
    ]


#: Tables where kubelet (KUBE-FIREWALL, KUBE-KUBELET-CANARY) and kube-proxy make chains.
KUBE_TABLES = ("filter", "nat", "mangle")


def kube_chain_cleanup(rules: str) -> list[list[str]]:
    """Arguments that remove kubelet's and kube-proxy's chains from one table (``-S`` output).

    The jumps into them from the built-in chains go first, then every ``KUBE-`` chain is
    flushed, then deleted (a chain still referenced cannot be). One real node per machine
    (see :mod:`mobileplane.stack.components.node`), so every ``KUBE-`` chain is the node's.
    """
    lines = rules.splitlines()
    jumps = [
        delete_rule(line)
        for line in lines
        if line.startswith("-A ")
        and not line.split()[1].startswith("KUBE-")
        and re.search(r" -j KUBE-\S+", line)
    ]
    chains = [line.split()[1] for line in lines if line.startswith("-N KUBE-")]
    return jumps + [["-F", c] for c in chains] + [["-X", c] for c in chains]


def holds_pod_address(ip_addr_output: str) -> bool:
    """Whether ``ip -4 -o addr`` of a network namespace shows an address of our pods."""
    subnet = ipaddress.ip_network(POD_SUBNET)
    for match in re.finditer(r"\binet (\d+\.\d+\.\d+\.\d+)/", ip_addr_output):
        if ipaddress.ip_address(match.group(1)) in subnet:
            return True
    return False


def mounts_under(mountinfo: str, root: Path) -> list[Path]:
    """Mount points at or below ``root`` in /proc/self/mountinfo, deepest first (to unmount)."""
    found = []
    prefix = str(root).rstrip("/") + "/"
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        if point == str(root) or point.startswith(prefix):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: (-len(p.parts), str(p)))


# -- the check workload ------------------------------------------------------------------


def _pod(name: str, args: list[str], probe: dict[str, Any], image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": CHECK_NAMESPACE, "labels": {"app": name}},
        "spec": {
            "nodeSelector": {NODE_LABEL: "true"},
            "tolerations": [{"key": NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534},
            "containers": [
                {
                    "name": name,
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["/probe"],
                    "args": args,
                    "readinessProbe": probe,
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


def check_manifests(image: str) -> list[dict[str, Any]]:
    """Namespace, Service and pods that prove pods run, resolve Services and reach them."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CHECK_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": CHECK_SERVICE, "namespace": CHECK_NAMESPACE},
            "spec": {
                "selector": {"app": "echo"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        },
        _pod(
            "echo",
            ["serve", ":8080"],
            {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 2},
            image,
        ),
        _pod(
            "dns-check",
            ["serve", ":8080"],
            {
                "exec": {"command": ["/probe", "get", CHECK_URL]},
                "periodSeconds": 3,
                "timeoutSeconds": 4,
            },
            image,
        ),
    ]


def pod_ready(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", []) or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def check_pods_waiting(
    waiting: list[str],
    pods: Mapping[str, Mapping[str, Any]],
    events: list[Mapping[str, Any]],
) -> str:
    """Each waiting check pod with its phase, address and newest event (a failing probe says
    why: refused, timed out, no such host), so a failed ``up`` names the cause in its message.
    """
    parts = []
    for name in waiting:
        pod = pods.get(name)
        if pod is None:
            parts.append(f"{name} (not created)")
            continue
        status = pod.get("status", {}) or {}
        where = f"{status.get('phase', 'Unknown')} at {status.get('podIP') or 'no address'}"
        mine = [
            e
            for e in events
            if (e.get("involvedObject", {}) or {}).get("name") == name
            and e.get("type") == "Warning"
        ]
        mine.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        if mine:
            message = " ".join(str(mine[-1].get("message", "")).split())
            where += f"; {mine[-1].get('reason', '')}: {message[:240]}"
        parts.append(f"{name} ({where})")
    return "; ".join(parts)


def node_ready(node: Mapping[str, Any], since: dt.datetime | None = None) -> bool:
    """The Node's Ready condition is True (and, with ``since``, heartbeated at or after it)."""
    conditions = node.get("status", {}).get("conditions", []) or []
    for c in conditions:
        if c.get("type") == "Ready" and c.get("status") == "True":
            if since is None:
                return True
            beat = c.get("lastHeartbeatTime") or ""
            try:
                return dt.datetime.fromisoformat(beat.replace("Z", "+00:00")) >= since
            except ValueError:
                return False
    return False


def dumps(value: object) -> str:
    """JSON for config files (YAML 1.2 readers such as kubelet's take JSON as it is)."""
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def stale_control_plane(apiserver_argv: list[str], kwok_argv: list[str]) -> list[str]:
    """What a control plane started by an older stack lacks for a real node (empty: fine).

    Such a control plane is still healthy for kwok, so ``up`` keeps it; the node must not join
    it: kubelet would be refused (no Node authorizer) and kwok would fake the node's status.
    """
    missing = []
    if not any(a.startswith("--authorization-mode=") and "Node" in a for a in apiserver_argv):
        missing.append("the API server's Node authorizer")
    if not any(a.startswith("--kubelet-client-certificate=") for a in apiserver_argv):
        missing.append("the API server's kubelet client certificate")
    if "--manage-all-nodes=true" in kwok_argv:
        missing.append("kwok limited to its own nodes")
    return missing


def collection_path(manifest: Mapping[str, Any]) -> str:
    """The API path that ``POST`` creates ``manifest`` at."""
    group_version = str(manifest["apiVersion"])
    base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    plural = str(manifest["kind"]).lower() + "s"
    namespace = manifest.get("metadata", {}).get("namespace")
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def same_pod(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a pod already there runs what ``wanted`` asks (images and arguments)."""

    def shape(pod: Mapping[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
        return [
            (c.get("name", ""), c.get("image", ""), tuple(c.get("args", [])))
            for c in pod.get("spec", {}).get("containers", [])
        ]

    return shape(existing) == shape(wanted)


def delete_rule(rule: str) -> list[str]:
    """``-A CHAIN args…`` (a line of ``iptables -S``) as arguments that delete it."""
    args = shlex.split(rule)
    return ["-D", *args[1:]]
