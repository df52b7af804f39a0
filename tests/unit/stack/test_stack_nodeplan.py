"""The real node's plan: containerd, CNI, kubelet, kube-proxy and CoreDNS configs, rules."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from mobileplane.stack import kubeplan, nodeplan
from mobileplane.stack.nodeplan import NodePaths

PATHS = NodePaths(Path("/state/node"))
CA = Path("/state/kube/pki/ca.crt")


def test_containerd_config_is_toml_with_the_settings_this_machine_needs() -> None:
    doc = tomllib.loads(nodeplan.containerd_config(PATHS, "localhost/mobileplane/pause:abc"))
    assert doc["version"] == 2
    assert doc["root"] == "/state/node/containerd/root"
    assert doc["state"] == "/state/node/containerd/state"
    assert doc["grpc"]["address"] == "/state/node/containerd/containerd.sock"
    cri = doc["plugins"]["io.containerd.grpc.v1.cri"]
    # No CAP_SYS_RESOURCE here: without it runc fails every sandbox.
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "localhost/mobileplane/pause:abc"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"] == {"BinaryName": "/usr/sbin/runc", "SystemdCgroup": False}
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"
    assert cri["cni"]["conf_dir"] == str(PATHS.cni_conf_dir)


def test_cni_conflist_bridge_gateway_is_the_node_address() -> None:
    conf: Any = json.loads(nodeplan.dumps(nodeplan.cni_conflist(PATHS)))
    assert conf["name"] == nodeplan.CNI_NETWORK
    bridge, portmap = conf["plugins"]
    assert bridge["type"] == "bridge" and bridge["bridge"] == nodeplan.BRIDGE
    assert bridge["isGateway"] and bridge["ipMasq"] and bridge["hairpinMode"]
    ((subnet,),) = bridge["ipam"]["ranges"]
    assert subnet == {"subnet": nodeplan.POD_SUBNET, "gateway": nodeplan.NODE_IP}
    assert bridge["ipam"]["dataDir"] == str(PATHS.cni_ipam_dir)
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}}


def test_addresses_fit_together() -> None:
    pods = ipaddress.ip_network(nodeplan.POD_SUBNET)
    node = ipaddress.ip_address(nodeplan.NODE_IP)
    assert node in pods
    assert not node.is_loopback  # kubelet refuses a loopback node IP
    assert pods.subnet_of(ipaddress.ip_network(nodeplan.CLUSTER_CIDR))  # type: ignore[arg-type]
    others = [kubeplan.SERVICE_CIDR, kubeplan.POD_CIDR, "127.0.0.0/8"]
    for other in others:
        assert not pods.overlaps(ipaddress.ip_network(other)), other


def test_kubelet_config() -> None:
    conf: Any = yaml.safe_load(nodeplan.dumps(nodeplan.kubelet_config(PATHS, CA, 50250, 50248)))
    assert conf["kind"] == "KubeletConfiguration"
    # cgroup v1 host: said explicitly (1.35 refuses v1 unless false), and cgroupfs.
    assert conf["failCgroupV1"] is False
    assert conf["cgroupDriver"] == "cgroupfs"
    assert conf["oomScoreAdj"] == 0
    assert conf["containerRuntimeEndpoint"] == f"unix://{PATHS.containerd_socket}"
    assert conf["address"] == nodeplan.NODE_IP and conf["port"] == 50250
    assert conf["healthzBindAddress"] == "127.0.0.1" and conf["healthzPort"] == 50248
    assert conf["readOnlyPort"] == 0
    assert conf["authentication"]["anonymous"]["enabled"] is False
    assert conf["authentication"]["x509"]["clientCAFile"] == str(CA)
    assert conf["authorization"]["mode"] == "Webhook"
    assert conf["clusterDNS"] == [nodeplan.NODE_IP]
    assert conf["registerWithTaints"] == [
        {"key": "mobileplane.dev/real-node", "value": "true", "effect": "NoSchedule"}
    ]


def test_kubelet_argv_registers_the_labelled_node_with_its_own_credentials() -> None:
    argv = nodeplan.kubelet_argv(Path("/cache/kubelet"), PATHS)
    assert argv[0] == "/cache/kubelet"
    assert f"--config={PATHS.kubelet_config}" in argv
    assert "--kubeconfig=/state/node/kubelet.kubeconfig" in argv
    assert f"--node-ip={nodeplan.NODE_IP}" in argv
    assert f"--hostname-override={nodeplan.NODE_NAME}" in argv
    (labels,) = [a.split("=", 1)[1] for a in argv if a.startswith("--node-labels=")]
    assert "mobileplane.dev/real-node=true" in labels.split(",")
    assert nodeplan.CLIENTS["kubelet"] == (f"system:node:{nodeplan.NODE_NAME}", ("system:nodes",))


def test_kube_proxy_config() -> None:
    conf: Any = yaml.safe_load(nodeplan.dumps(nodeplan.kube_proxy_config(PATHS, 50256, 50249)))
    assert conf["kind"] == "KubeProxyConfiguration"
    assert conf["mode"] == "iptables"
    assert conf["clusterCIDR"] == nodeplan.CLUSTER_CIDR
    assert conf["hostnameOverride"] == nodeplan.NODE_NAME
    assert conf["clientConnection"]["kubeconfig"] == "/state/node/kube-proxy.kubeconfig"
    assert conf["healthzBindAddress"] == "127.0.0.1:50256"
    assert conf["metricsBindAddress"] == "127.0.0.1:50249"
    assert conf["nodePortAddresses"] == [f"{nodeplan.NODE_IP}/32"]


def test_corefile_serves_the_cluster_domain_on_the_node_address() -> None:
    text = nodeplan.corefile(Path("/state/node/coredns.kubeconfig"), 50253, 50254)
    assert f"bind {nodeplan.NODE_IP}" in text
    assert "health 127.0.0.1:50253" in text
    assert "ready 127.0.0.1:50254" in text
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa {" in text
    assert "kubeconfig /state/node/coredns.kubeconfig" in text
    assert "forward . /etc/resolv.conf" in text
    assert text.count("{") == text.count("}")


def test_coredns_rbac_reads_what_its_kubernetes_plugin_watches() -> None:
    role, binding = nodeplan.coredns_rbac()
    user = nodeplan.CLIENTS["coredns"][0]
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert {"services", "endpointslices", "namespaces"} <= resources
    assert all(set(rule["verbs"]) == {"list", "watch"} for rule in role["rules"])


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        pytest.param([55432], [55432], id="one"),
        pytest.param([56379, 55432, 56379], [55432, 56379], id="sorted-unique"),
        pytest.param([], [], id="none"),
    ],
)
def test_host_service_rules(ports: list[int], expected: list[int]) -> None:
    rules = nodeplan.host_service_rules(ports)
    assert set(rules) == {nodeplan.DNAT_CHAIN, nodeplan.SNAT_CHAIN}
    dnat = rules[nodeplan.DNAT_CHAIN]
    assert [int(r[r.index("--dport") + 1]) for r in dnat] == expected
    for rule in dnat:
        port = rule[rule.index("--dport") + 1]
        assert rule[rule.index("-d") + 1] == nodeplan.NODE_IP
        assert rule[rule.index("-s") + 1] == nodeplan.POD_SUBNET
        assert rule[-2:] == ["--to-destination", f"127.0.0.1:{port}"]
    assert all(nodeplan.KUBERNETES_SERVICE_IP not in rule for rule in dnat)
    (snat,) = rules[nodeplan.SNAT_CHAIN]
    assert snat[-3:] == ["SNAT", "--to-source", "127.0.0.1"]
    assert [chain for _, chain in nodeplan.HOOKS] == [nodeplan.DNAT_CHAIN, nodeplan.SNAT_CHAIN]


MARK = 'name: \\"mobileplane\\" id: \\"ab12\\"'
NAT_RULES = "\n".join(
    [
        "-P PREROUTING ACCEPT",
        "-N CNI-0f1e",
        f'-A POSTROUTING -s 10.244.0.7/32 -m comment --comment "{MARK}" -j CNI-0f1e',
        '-A POSTROUTING -s 10.88.0.3/32 -m comment --comment "name: \\"podman\\"" -j CNI-9',
        f'-A CNI-0f1e -d 10.244.0.0/24 -m comment --comment "{MARK}" -j ACCEPT',
        "-A KUBE-SERVICES -d 10.96.0.1/32 -j KUBE-SVC-NPX46M4PTMTKRN6Y",
    ]
)


def test_cni_leftover_rules_only_ours() -> None:
    found = nodeplan.cni_leftover_rules(NAT_RULES)
    assert len(found) == 2
    assert all("mobileplane" in line for line in found)
    assert nodeplan.delete_rule(found[0])[:4] == ["-D", "POSTROUTING", "-s", "10.244.0.7/32"]
    assert 'name: "mobileplane" id: "ab12"' in nodeplan.delete_rule(found[0])


CRI = "/state/node/containerd/state/io.containerd"
MOUNTINFO = "\n".join(
    [
        "22 1 8:1 / / rw - ext4 /dev/vda rw",
        "80 22 0:50 / /state/node/kubelet/pods/u1/volumes/x~projected/tok rw - tmpfs tmpfs rw",
        f"81 22 0:51 / {CRI}.grpc.v1.cri/sandboxes/s1/shm rw - tmpfs shm rw",
        f"82 22 0:52 / {CRI}.runtime.v2.task/k8s.io/c1/rootfs rw - overlay overlay rw",
        "83 22 0:53 / /state/node2/x rw - tmpfs tmpfs rw",
        "84 22 0:54 / /state/node/with\\040space rw - tmpfs tmpfs rw",
    ]
)


def test_mounts_under_deepest_first_and_only_ours() -> None:
    found = [str(p) for p in nodeplan.mounts_under(MOUNTINFO, Path("/state/node"))]
    assert "/state/node2/x" not in found
    assert "/" not in found
    assert "/state/node/with space" in found
    assert len(found) == 4
    depths = [len(Path(p).parts) for p in found]
    assert depths == sorted(depths, reverse=True)


def test_check_workload_lands_only_on_the_real_node_and_checks_dns_and_routing() -> None:
    docs = nodeplan.check_manifests("localhost/mobileplane/probe:abc")
    kinds = [d["kind"] for d in docs]
    assert kinds == ["Namespace", "Service", "Pod", "Pod"]
    service = docs[1]
    pods = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Pod"}
    assert set(pods) == set(nodeplan.CHECK_PODS)
    assert service["spec"]["selector"] == pods["echo"]["metadata"]["labels"]
    for pod in pods.values():
        spec = pod["spec"]
        assert spec["nodeSelector"] == {nodeplan.NODE_LABEL: "true"}
        assert spec["tolerations"][0]["key"] == nodeplan.TAINT["key"]
        (container,) = spec["containers"]
        assert container["image"] == "localhost/mobileplane/probe:abc"
        assert container["imagePullPolicy"] == "Never"
    probe = pods["dns-check"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
    assert probe == ["/probe", "get", "http://echo.mobileplane-node.svc.cluster.local/"]
    assert nodeplan.CHECK_URL.startswith(f"http://{service['metadata']['name']}.")


@pytest.mark.parametrize(
    ("manifest", "path"),
    [
        pytest.param(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}},
            "/api/v1/namespaces",
            id="cluster-scoped-core",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}},
            "/api/v1/namespaces/n/pods",
            id="namespaced-core",
        ),
        pytest.param(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "b"},
            },
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            id="group",
        ),
    ],
)
def test_collection_path(manifest: dict[str, Any], path: str) -> None:
    assert nodeplan.collection_path(manifest) == path


def test_same_pod() -> None:
    pod = nodeplan.check_manifests("img:1")[2]
    assert nodeplan.same_pod(pod, pod)
    assert not nodeplan.same_pod(pod, nodeplan.check_manifests("img:2")[2])
    assert not nodeplan.same_pod(pod, nodeplan.check_manifests("img:1")[3])


@pytest.mark.parametrize(
    ("status", "ready"),
    [
        pytest.param({"conditions": [{"type": "Ready", "status": "True"}]}, True, id="ready"),
        pytest.param({"conditions": [{"type": "Ready", "status": "False"}]}, False, id="not"),
        pytest.param({"conditions": None}, False, id="null-conditions"),
        pytest.param({}, False, id="no-status"),
    ],
)
def test_ready(status: dict[str, Any], ready: bool) -> None:
    assert nodeplan.pod_ready({"status": status}) is ready
    assert nodeplan.node_ready({"status": status}) is ready


def test_kwok_manages_only_nodes_with_its_annotation() -> None:
    key, value = kubeplan.KWOK_NODE_ANNOTATION.split("=")
    assert kubeplan.fake_node("kwok-node-0")["metadata"]["annotations"][key] == value  # type: ignore[index]
    assert key not in nodeplan.NODE_LABEL


FILTER_RULES = "\n".join(
    [
        "-P INPUT ACCEPT",
        "-N CNI-FORWARD",
        "-N KUBE-FIREWALL",
        "-N KUBE-SERVICES",
        "-A INPUT -j KUBE-FIREWALL",
        '-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD',
        "-A OUTPUT -m conntrack --ctstate NEW -j KUBE-SERVICES",
        "-A KUBE-SERVICES -d 10.96.0.9/32 -j KUBE-SVC-X",
        "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -j DROP",
    ]
)


def test_kube_chain_cleanup_unhooks_then_flushes_then_deletes_only_kube_chains() -> None:
    steps = nodeplan.kube_chain_cleanup(FILTER_RULES)
    assert steps == [
        ["-D", "INPUT", "-j", "KUBE-FIREWALL"],
        ["-D", "OUTPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", "KUBE-SERVICES"],
        ["-F", "KUBE-FIREWALL"],
        ["-F", "KUBE-SERVICES"],
        ["-X", "KUBE-FIREWALL"],
        ["-X", "KUBE-SERVICES"],
    ]
    assert nodeplan.kube_chain_cleanup("-P INPUT ACCEPT\n") == []


@pytest.mark.parametrize(
    ("output", "ours"),
    [
        pytest.param(
            "1: lo    inet 127.0.0.1/8 scope host lo\n"
            "2: eth0    inet 10.244.0.3/24 brd 10.244.0.255 scope global eth0\n",
            True,
            id="our-pod",
        ),
        pytest.param("2: eth0    inet 10.88.0.5/16 scope global eth0\n", False, id="podman"),
        pytest.param("1: lo    inet 127.0.0.1/8 scope host lo\n", False, id="loopback-only"),
        pytest.param("", False, id="empty"),
    ],
)
def test_holds_pod_address(output: str, ours: bool) -> None:
    assert nodeplan.holds_pod_address(output) is ours


SINCE = dt.datetime(2026, 12, 3, 7, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("condition", "ready"),
    [
        pytest.param({"lastHeartbeatTime": "2026-12-03T07:00:05Z"}, True, id="after"),
        pytest.param({"lastHeartbeatTime": "2026-12-03T07:00:00Z"}, True, id="same-second"),
        pytest.param({"lastHeartbeatTime": "2026-12-03T06:59:59Z"}, False, id="stale"),
        pytest.param({}, False, id="no-heartbeat"),
        pytest.param({"lastHeartbeatTime": "yesterday"}, False, id="unparsable"),
    ],
)
def test_node_ready_since_a_kubelet_start(condition: dict[str, str], ready: bool) -> None:
    node = {"status": {"conditions": [{"type": "Ready", "status": "True", **condition}]}}
    assert nodeplan.node_ready(node, SINCE) is ready
    assert nodeplan.node_ready(node)  # without a start time, any Ready counts


def test_stale_control_plane() -> None:
    paths = kubeplan.KubePaths(Path("/state/kube"))
    api = kubeplan.apiserver_argv(Path("a"), paths, "127.0.0.1", 56443, 52379)
    kwok = kubeplan.kwok_argv(Path("k"), Path("s"), paths, "127.0.0.1", 50247)
    assert nodeplan.stale_control_plane(api, kwok) == []
    old_api = [a for a in api if not a.startswith("--kubelet-client-")]
    old_api = [("--authorization-mode=RBAC" if "authorization-mode" in a else a) for a in old_api]
    old_kwok = [a for a in kwok if "manage-nodes" not in a] + ["--manage-all-nodes=true"]
    assert nodeplan.stale_control_plane(old_api, old_kwok) == [
        "the API server's Node authorizer",
        "the API server's kubelet client certificate",
        "kwok limited to its own nodes",
    ]


def test_the_kubernetes_service_goes_to_the_api_server_on_loopback() -> None:
    assert nodeplan.KUBERNETES_SERVICE_IP == "10.96.0.1"
    dnat = nodeplan.host_service_rules([55432], apiserver_port=56443)[nodeplan.DNAT_CHAIN]
    assert dnat[-1] == [
        *["-s", nodeplan.POD_SUBNET, "-d", "10.96.0.1", "-p", "tcp", "--dport", "443"],
        *["-j", "DNAT", "--to-destination", "127.0.0.1:56443"],
    ]


def test_check_pods_waiting_names_phase_address_and_newest_warning() -> None:
    pods = {
        "echo": {"status": {"phase": "Running", "podIP": "10.244.0.2"}},
        "dns-check": {"status": {"phase": "Pending"}},
    }
    events = [
        {
            "involvedObject": {"name": "echo"},
            "type": "Warning",
            "reason": "Unhealthy",
            "lastTimestamp": "2026-12-03T08:34:30Z",
            "message": "Readiness probe failed: Get ...: i/o timeout",
        },
        {
            "involvedObject": {"name": "echo"},
            "type": "Warning",
            "reason": "Unhealthy",
            "lastTimestamp": "2026-12-03T08:34:36Z",
            "message": "Readiness probe failed:\n  connect: connection refused",
        },
        {"involvedObject": {"name": "echo"}, "type": "Normal", "reason": "Started"},
    ]
    text = nodeplan.check_pods_waiting(["echo", "dns-check", "gone"], pods, events)
    assert text == (
        "echo (Running at 10.244.0.2; Unhealthy: Readiness probe failed: connect: connection "
        "refused); dns-check (Pending at no address); gone (not created)"
    )
