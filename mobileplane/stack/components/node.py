"""A real worker node joined to the stack's API server: containers really run.

containerd (Debian's, its CRI plugin) with runc and the CNI reference plugins, kubelet and
kube-proxy (iptables mode) built from the control plane's Kubernetes version, CoreDNS as a
host process, and the two tiny images the node needs (the sandbox's pause, the check tool),
built from Go source and imported into containerd: no registry is reachable. The plan (config
files, command lines, rules, check workload) is :mod:`mobileplane.stack.nodeplan`.

Needs root (containerd, kubelet, iptables). One real node per machine: kubelet's cgroups
(``/kubepods``), the ``KUBE-`` iptables chains, the bridge and its address are machine-wide,
so a second stack refuses to start its node while another stack's runs
(``/run/mobileplane-node.json``), and ``MOBILEPLANE_REAL_NODE=off`` runs a stack without one.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mobileplane.stack import kubeplan, nodeplan
from mobileplane.stack.components.base import Context, Health, ensure_port_free, wait_until
from mobileplane.stack.components.debian import apt_install
from mobileplane.stack.components.kube import Kube
from mobileplane.stack.components.nodebuild import (
    NODE_BINARIES,
    build_coredns,
    build_crictl,
    build_kube_node,
    build_node_images,
    coredns_key,
    image_refs,
    images_key,
)
from mobileplane.stack.errors import StackError
from mobileplane.stack.gobuild import Build
from mobileplane.stack.pki import ensure_client_cert, ensure_pki
from mobileplane.stack.procs import ProcessTable
from mobileplane.stack.versions import pin

#: The host services pods reach at the node's address (same ports as on 127.0.0.1).
HOST_SERVICES = ("postgres", "redis", "s3", "unleash")
LOCK = Path("/run/mobileplane-node.json")
SWITCH = "MOBILEPLANE_REAL_NODE"


def enabled() -> bool:
    return os.environ.get(SWITCH, "on").lower() not in ("off", "0", "false", "no")


# -- small helpers -------------------------------------------------------------------------


def _run(
    cmd: list[str], *, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and out.returncode != 0:
        raise StackError(
            "node",
            f"`{' '.join(cmd)}` failed (exit {out.returncode}): {out.stderr.strip()[:300]}",
            "read the message; `mobileplane stack down` removes what the node set up",
        )
    return out


def _write_sysctl(path: str, value: str) -> None:
    Path("/proc/sys", path).write_text(value + "\n")


class Node:
    name = "node"
    requires: tuple[str, ...] = ("kube",)

    def _paths(self, ctx: Context) -> nodeplan.NodePaths:
        return nodeplan.NodePaths(ctx.config.component_state("node"))

    def _builds(self, ctx: Context) -> dict[str, Build]:
        return {
            "kube": Build(ctx, "kubernetes-node", pin("kubernetes").version),
            "coredns": Build(ctx, "coredns", coredns_key()),
            "crictl": Build(ctx, "cri-tools", pin("cri-tools").version),
            "images": Build(ctx, "node-images", images_key()),
        }

    def _debian_missing(self) -> list[str]:
        needed = {
            "containerd": Path("/usr/bin/containerd"),
            "runc": nodeplan.RUNC,
            "containernetworking-plugins": nodeplan.CNI_BIN_DIR / "bridge",
            "iptables": Path("/usr/sbin/iptables"),
            "conntrack": Path("/usr/sbin/conntrack"),
        }
        return [pkg for pkg, path in needed.items() if not path.exists()]

    def installed(self, ctx: Context) -> bool:
        if not enabled():
            return True
        b = self._builds(ctx)
        return (
            not self._debian_missing()
            and b["kube"].complete(NODE_BINARIES)
            and b["coredns"].complete(["coredns"])
            and b["crictl"].complete(["crictl"])
            and b["images"].complete(["pause.oci.tar", "probe.oci.tar"])
        )

    def install(self, ctx: Context) -> None:
        if not enabled():
            return
        missing = self._debian_missing()
        if missing:
            apt_install(ctx, self.name, missing)
        build_node_images(ctx)
        build_crictl(ctx)
        build_coredns(ctx)
        build_kube_node(ctx)

    # -- the API server ----------------------------------------------------------------

    def _api(
        self,
        ctx: Context,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        return Kube().request(ctx, method, path, body, content_type=content_type)

    def _apply(self, ctx: Context, manifest: dict[str, Any], replace: bool = False) -> None:
        """Create ``manifest`` unless it exists; a pod with another spec is made anew, and
        with ``replace`` every pod (its status must come from the kubelet started now)."""
        collection = nodeplan.collection_path(manifest)
        name = manifest["metadata"]["name"]
        status, body = self._api(ctx, "GET", f"{collection}/{name}")
        if status == 200:
            pod = manifest["kind"] == "Pod"
            if not pod or (not replace and nodeplan.same_pod(body, manifest)):
                return
            self._api(ctx, "DELETE", f"{collection}/{name}", {"gracePeriodSeconds": 0})
            self._wait_gone(ctx, f"{collection}/{name}")
        status, body = self._api(ctx, "POST", collection, manifest)
        if status not in (200, 201, 409):
            raise StackError(
                self.name,
                f"creating {manifest['kind']} {name}: {status} {str(body)[:300]}",
                "read the kube-apiserver log",
                ctx.log("kube-apiserver"),
            )

    def _wait_gone(self, ctx: Context, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, _ = self._api(ctx, "GET", path)
            if status == 404:
                return
            time.sleep(0.5)

    def _node(self, ctx: Context) -> dict[str, Any] | None:
        try:
            status, body = self._api(ctx, "GET", f"/api/v1/nodes/{nodeplan.NODE_NAME}")
        except OSError:
            return None
        return body if status == 200 and isinstance(body, dict) else None

    def _node_health(self, ctx: Context, since: dt.datetime | None = None) -> Health:
        """The Node Ready; with ``since``, as reported by a kubelet heartbeat after it."""
        node = self._node(ctx)
        if node is None:
            return Health(False, f"Node {nodeplan.NODE_NAME} is not registered")
        if not nodeplan.node_ready(node, since):
            return Health(False, f"Node {nodeplan.NODE_NAME} is not Ready (yet)")
        return Health(True, f"Node {nodeplan.NODE_NAME} Ready")

    def _check_health(self, ctx: Context) -> Health:
        """The check pods Ready: DNS of a Service name and routing through it work."""
        ns = nodeplan.CHECK_NAMESPACE
        try:
            status, body = self._api(ctx, "GET", f"/api/v1/namespaces/{ns}/pods")
        except OSError as e:
            return Health(False, f"API server unreachable: {e}")
        if status != 200:
            return Health(False, f"listing the check pods: {status}")
        pods = {p["metadata"]["name"]: p for p in body.get("items", [])}
        waiting = [
            n for n in nodeplan.CHECK_PODS if not (n in pods and nodeplan.pod_ready(pods[n]))
        ]
        if waiting:
            status, events = self._api(ctx, "GET", f"/api/v1/namespaces/{ns}/events")
            items = events.get("items", []) if status == 200 and isinstance(events, dict) else []
            why = nodeplan.check_pods_waiting(waiting, pods, items)
            return Health(False, f"check pods not Ready (namespace {ns}): {why}")
        return Health(True, f"a pod resolves and reaches {nodeplan.CHECK_URL}")

    def health(self, ctx: Context) -> Health:
        if not enabled():
            return Health(True, f"off ({SWITCH}=off)")
        dead = [p for p in nodeplan.PROCESSES if not ctx.procs.alive(p)]
        if dead:
            reason = self.blocked(ctx)
            return Health(False, f"not running: {reason or ', '.join(dead)}")
        node = self._node_health(ctx)
        if not node.healthy:
            return node
        check = self._check_health(ctx)
        if not check.healthy:
            return check
        return Health(True, f"{node.detail}; {check.detail}")

    # -- host setup ----------------------------------------------------------------------

    def blocked(self, ctx: Context) -> str | None:
        """Why this stack cannot have the real node now (None: it can), with what to do.

        Another stack's node runs (one per machine), or the control plane was started by an
        older stack. ``up`` then leaves the node out and says why, rather than failing the
        whole stack: on a machine shared by several stacks the others still come up, and the
        ``realnode`` tests fail with this reason.
        """
        other = self._other_node(ctx)
        if other:
            return (
                f"the stack in {other} runs this machine's real node (one per machine); "
                f"stop it (MOBILEPLANE_STACK_DIR={other} mobileplane stack down), or run "
                f"this stack without a real node: export {SWITCH}=off"
            )
        api, kwok = ctx.procs.get("kube-apiserver"), ctx.procs.get("kwok")
        stale = nodeplan.stale_control_plane(api.argv if api else [], kwok.argv if kwok else [])
        if api and kwok and stale:
            return (
                f"the control plane was started by an older stack without {', '.join(stale)}; "
                "restart it once (data is kept): mobileplane stack down && mobileplane stack up"
            )
        return None

    def _other_node(self, ctx: Context) -> str | None:
        """The state directory of another stack whose real node runs on this machine."""
        try:
            other = str(json.loads(LOCK.read_text()).get("state", ""))
        except (OSError, ValueError, AttributeError):
            return None
        if not other or other == str(ctx.config.state) or not Path(other).exists():
            return None
        procs = ProcessTable(Path(other))
        return other if any(procs.alive(p) for p in nodeplan.PROCESSES) else None

    def _network(self, ctx: Context) -> None:
        """The bridge with the node's address, forwarding, and the host-service rules."""
        bridge = nodeplan.BRIDGE
        if _run(["ip", "link", "show", bridge], check=False).returncode != 0:
            _run(["ip", "link", "add", bridge, "type", "bridge"])
        _run(["ip", "addr", "replace", f"{nodeplan.NODE_IP}/24", "dev", bridge])
        _run(["ip", "link", "set", bridge, "up"])
        _write_sysctl("net/ipv4/ip_forward", "1")
        # Pod-to-pod traffic through a Service on the same bridge must pass kube-proxy's rules.
        _write_sysctl("net/bridge/bridge-nf-call-iptables", "1")
        # Pods' connections DNATed to 127.0.0.1 (the host services) are allowed in.
        _write_sysctl(f"net/ipv4/conf/{bridge}/route_localnet", "1")
        ports = [ctx.config.ports[s] for s in HOST_SERVICES]
        for chain, rules in nodeplan.host_service_rules(
            ports, ctx.config.ports["apiserver"]
        ).items():
            if _run(["iptables", "-w", "-t", "nat", "-N", chain], check=False).returncode != 0:
                _run(["iptables", "-w", "-t", "nat", "-F", chain])
            for rule in rules:
                _run(["iptables", "-w", "-t", "nat", "-A", chain, *rule])
        for hook, chain in nodeplan.HOOKS:
            jump = [hook, "-j", chain]
            if _run(["iptables", "-w", "-t", "nat", "-C", *jump], check=False).returncode != 0:
                _run(["iptables", "-w", "-t", "nat", "-I", *jump])

    def _pki(self, ctx: Context, paths: nodeplan.NodePaths) -> None:
        kube_pki = kubeplan.KubePaths(ctx.config.component_state("kube")).pki
        ensure_pki(kube_pki, ctx.config.host)
        server = Kube().server(ctx)
        ca_b64 = base64.b64encode((kube_pki / "ca.crt").read_bytes()).decode()
        for stem, (user, groups) in nodeplan.CLIENTS.items():
            ensure_client_cert(kube_pki, paths.pki, stem, user, groups)
            kubeconfig = paths.kubeconfig(stem)
            kubeconfig.write_text(
                nodeplan.client_kubeconfig(
                    server, ca_b64, user, paths.pki / f"{stem}.crt", paths.pki / f"{stem}.key"
                )
            )
            os.chmod(kubeconfig, 0o600)

    # -- lifecycle ---------------------------------------------------------------------

    def _start(self, ctx: Context, name: str, argv: list[str]) -> None:
        if not ctx.procs.alive(name):
            ctx.procs.start(name, argv, ctx.log(name), cwd=self._paths(ctx).root)

    def _crictl(self, ctx: Context) -> list[str]:
        crictl = self._builds(ctx)["crictl"].bin / "crictl"
        endpoint = f"unix://{self._paths(ctx).containerd_socket}"
        return [
            str(crictl),
            "--runtime-endpoint",
            endpoint,
            "--image-endpoint",
            endpoint,
            "--timeout",
            "20s",
        ]

    def _ctr(self, ctx: Context) -> list[str]:
        return [
            "ctr",
            "--address",
            str(self._paths(ctx).containerd_socket),
            "--namespace",
            "k8s.io",
        ]

    def import_archive(self, ctx: Context, archive: Path) -> None:
        """Import an image archive (OCI or docker) into the node's containerd."""
        ctx.progress.run(
            self.name,
            f"importing {archive.name} into the node's containerd",
            [*self._ctr(ctx), "images", "import", str(archive)],
            ctx.log("node-images"),
            fix="read the log; the archive must be an OCI or docker image archive",
        )

    def _images(self, ctx: Context) -> None:
        have = set(_run([*self._ctr(ctx), "images", "ls", "-q"]).stdout.split())
        images = self._builds(ctx)["images"]
        for name, ref in image_refs().items():
            if ref not in have:
                self.import_archive(ctx, images.bin / f"{name}.oci.tar")

    def start(self, ctx: Context) -> None:
        if not enabled():
            ctx.progress.say(self.name, f"off ({SWITCH}=off): no real node in this stack")
            return
        if self.health(ctx).healthy:
            ctx.progress.say(self.name, f"already running: {nodeplan.NODE_NAME} Ready")
            return
        if os.geteuid() != 0:
            raise StackError(
                self.name,
                "the real node needs root (containerd, kubelet, iptables)",
                f"run the stack as root, or without a real node: export {SWITCH}=off",
            )
        if not self.installed(ctx):
            raise StackError(self.name, "the node is not built", "run `mobileplane stack up`")
        reason = self.blocked(ctx)
        if reason:
            ctx.progress.say(self.name, f"not started: {reason}")
            return
        if not any(ctx.procs.alive(p) for p in ("containerd", "kubelet")):
            self._clear_leftovers(ctx)
        LOCK.write_text(json.dumps({"state": str(ctx.config.state)}) + "\n")
        started = time.monotonic()
        paths = self._paths(ctx)
        builds = self._builds(ctx)
        ports = ctx.config.ports
        for d in (paths.cni_conf_dir, paths.cni_ipam_dir, paths.pod_logs, paths.kubelet_root):
            d.mkdir(parents=True, exist_ok=True)
        self._network(ctx)
        self._pki(ctx, paths)
        kube_pki = kubeplan.KubePaths(ctx.config.component_state("kube")).pki

        refs = image_refs()
        paths.containerd_config.parent.mkdir(parents=True, exist_ok=True)
        paths.containerd_config.write_text(nodeplan.containerd_config(paths, refs["pause"]))
        (paths.cni_conf_dir / f"10-{nodeplan.CNI_NETWORK}.conflist").write_text(
            nodeplan.dumps(nodeplan.cni_conflist(paths))
        )
        self._start(ctx, "containerd", ["containerd", "--config", str(paths.containerd_config)])
        wait_until(
            "containerd",
            "containerd start",
            lambda: self._containerd_health(ctx),
            timeout=30,
            fix="read the log",
            log=ctx.log("containerd"),
            alive=lambda: ctx.procs.alive("containerd"),
        )
        self._images(ctx)

        for manifest in nodeplan.coredns_rbac():
            self._apply(ctx, manifest)
        paths.corefile.write_text(
            nodeplan.corefile(
                paths.kubeconfig("coredns"), ports["coredns_health"], ports["coredns_ready"]
            )
        )
        if not ctx.procs.alive("coredns"):
            ensure_port_free(
                self.name, "127.0.0.1", ports["coredns_health"], "MOBILEPLANE_COREDNS_HEALTH_PORT"
            )
        self._start(ctx, "coredns", nodeplan.coredns_argv(builds["coredns"].bin / "coredns", paths))

        paths.kube_proxy_config.write_text(
            nodeplan.dumps(
                nodeplan.kube_proxy_config(
                    paths, ports["kube_proxy_healthz"], ports["kube_proxy_metrics"]
                )
            )
        )
        self._start(
            ctx, "kube-proxy", nodeplan.kube_proxy_argv(builds["kube"].bin / "kube-proxy", paths)
        )

        paths.kubelet_config.write_text(
            nodeplan.dumps(
                nodeplan.kubelet_config(
                    paths, kube_pki / "ca.crt", ports["kubelet"], ports["kubelet_healthz"]
                )
            )
        )
        # The API server still holds the last kubelet's statuses (Node and pods Ready) until
        # they time out: a kubelet started now must report afresh before the node counts.
        fresh = not ctx.procs.alive("kubelet")
        kubelet_start = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self._start(ctx, "kubelet", nodeplan.kubelet_argv(builds["kube"].bin / "kubelet", paths))
        wait_until(
            "coredns",
            "CoreDNS ready (its Kubernetes watches synced)",
            lambda: self._coredns_health(ctx),
            timeout=60,
            fix="read the log",
            log=ctx.log("coredns"),
            alive=lambda: ctx.procs.alive("coredns"),
        )
        wait_until(
            "kubelet",
            f"Node {nodeplan.NODE_NAME} Ready",
            lambda: self._node_health(ctx, kubelet_start if fresh else None),
            timeout=120,
            fix="read the log",
            log=ctx.log("kubelet"),
            alive=lambda: ctx.procs.alive("kubelet"),
            interval=1.0,
        )
        for manifest in nodeplan.check_manifests(refs["probe"]):
            self._apply(ctx, manifest, replace=fresh)
        wait_until(
            self.name,
            "a pod on the node resolving and reaching a Service",
            lambda: self._check_health(ctx),
            timeout=120,
            fix=f"`kubectl -n {nodeplan.CHECK_NAMESPACE} describe pods`; read the logs of "
            "kubelet, kube-proxy and coredns",
            log=ctx.log("kubelet"),
            alive=lambda: all(ctx.procs.alive(p) for p in nodeplan.PROCESSES),
            interval=1.0,
        )
        ctx.progress.say(
            self.name,
            f"ready in {time.monotonic() - started:.1f}s: {nodeplan.NODE_NAME} at "
            f"{nodeplan.NODE_IP} (containerd {paths.containerd_socket})",
        )

    def _containerd_health(self, ctx: Context) -> Health:
        if not self._paths(ctx).containerd_socket.exists():
            return Health(False, "no socket yet")
        out = _run([*self._ctr(ctx), "version"], check=False, timeout=10)
        return Health(
            out.returncode == 0,
            out.stdout.strip().splitlines()[-1] if out.stdout else out.stderr.strip(),
        )

    def _coredns_health(self, ctx: Context) -> Health:
        url = f"http://127.0.0.1:{ctx.config.ports['coredns_ready']}/ready"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return Health(resp.status == 200, f"/ready {resp.status}")
        except (OSError, urllib.error.HTTPError) as e:
            return Health(False, f"/ready: {e}")

    def stop(self, ctx: Context) -> list[str]:
        """Stop pods' sandboxes through the CRI, then the programs, then undo the host setup.

        Pods stay bound in the API server, like on a rebooted node: the next ``up`` runs them
        again.
        """
        stopped: list[str] = []
        paths = self._paths(ctx)
        if ctx.procs.stop("kubelet"):
            stopped.append("kubelet")
        if not ctx.procs.alive("containerd") and self._shims(paths) and os.geteuid() == 0:
            # containerd died, its shims and containers did not: a new containerd takes them
            # back, so that the sandboxes go the proper way (CNI DEL) below.
            self._start(ctx, "containerd", ["containerd", "--config", str(paths.containerd_config)])
            with contextlib.suppress(StackError):
                wait_until(
                    "containerd",
                    "containerd restart to stop the pods",
                    lambda: self._containerd_health(ctx),
                    timeout=30,
                    fix="read the log",
                    log=ctx.log("containerd"),
                )
        if ctx.procs.alive("containerd"):
            crictl = self._crictl(ctx)
            if Path(crictl[0]).exists():
                # Stops every container and sandbox: the CNI plugins release their addresses
                # and remove their rules; kubelet's volumes are unmounted below.
                _run([*crictl, "rmp", "--all", "--force"], check=False, timeout=120)
        for name in ("kube-proxy", "coredns"):
            if ctx.procs.stop(name):
                stopped.append(name)
        if ctx.procs.stop("containerd"):
            stopped.append("containerd")
        ours = (paths.root / "containerd").exists() and self._other_node(ctx) is None
        if os.geteuid() == 0 and ours:
            # What a crash can leave: shims, containers without shims, their mounts, netns.
            # Never while another stack's node runs: the pods' cgroups, the KUBE- chains and
            # the bridge would be its.
            for pid in self._shims(paths):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self._kill_pods()
            self._unmount(paths)
            self._network_down(ctx)
            with contextlib.suppress(OSError, ValueError):
                if json.loads(LOCK.read_text()).get("state") == str(ctx.config.state):
                    LOCK.unlink()
        return stopped

    def _clear_leftovers(self, ctx: Context) -> None:
        """Undo what a node that never stopped left on this machine, before starting afresh.

        A stack whose processes were killed (a session ending, a CI job timing out, a
        ``kill -9``) leaves kernel state behind: pods' network namespaces holding their
        addresses with their veths on the bridge, the ``KUBE-`` chains, mounts, maybe shims.
        A new node's fresh address pool then hands out an address a dead namespace still
        holds: the host's connections to the new pod reach the old namespace, which refuses
        them, and nothing is Ready (CI saw exactly this). Only called when no node runs,
        ours or another stack's: nothing of it can be in use.
        """
        paths = self._paths(ctx)
        roots = [paths.root]
        with contextlib.suppress(OSError, ValueError, AttributeError):
            other = Path(str(json.loads(LOCK.read_text()).get("state", "")))
            if str(other) and other != ctx.config.state:
                roots.append(other / "node")
        shims = [pid for root in roots for pid in self._shims(nodeplan.NodePaths(root))]
        namespaces = self._pod_namespaces()
        if not (shims or namespaces or nodeplan.BRIDGE in _run(["ip", "-o", "link"]).stdout):
            return
        ctx.progress.say(
            self.name,
            f"clearing what a node that did not stop left behind ({len(namespaces)} pod "
            f"network namespaces, {len(shims)} container shims, its bridge and rules)",
        )
        for pid in shims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._kill_pods()
        for root in roots:
            self._unmount(nodeplan.NodePaths(root))
        self._network_down(ctx)
        for flag in ("-s", "-d"):
            _run(["conntrack", "-D", flag, nodeplan.POD_SUBNET], check=False)

    def _pod_namespaces(self) -> list[str]:
        """Network namespaces (CNI's, by name) that hold an address of our pods."""
        found = []
        for netns in sorted(Path("/var/run/netns").glob("cni-*")):
            addresses = _run(["ip", "-n", netns.name, "-4", "-o", "addr"], check=False).stdout
            if nodeplan.holds_pod_address(addresses):
                found.append(netns.name)
        return found

    def _shims(self, paths: nodeplan.NodePaths) -> list[int]:
        """Shims of this stack's containerd (found by its socket path in their arguments)."""
        address = str(paths.containerd_socket).encode()
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address in argv:
                found.append(int(proc.name))
        return found

    def _kill_pods(self) -> None:
        """Kill what still runs in the pods' cgroups (``kubepods``: one real node per machine)."""
        pids: set[int] = set()
        for procs in Path("/sys/fs/cgroup").glob("*/kubepods/**/cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs.read_text().split())
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _unmount(self, paths: nodeplan.NodePaths) -> None:
        for point in nodeplan.mounts_under(Path("/proc/self/mountinfo").read_text(), paths.root):
            if _run(["umount", str(point)], check=False).returncode != 0:
                _run(["umount", "-l", str(point)], check=False)

    def _network_down(self, ctx: Context) -> None:
        ipt = ["iptables", "-w", "-t", "nat"]
        for hook, chain in nodeplan.HOOKS:
            while _run([*ipt, "-D", hook, "-j", chain], check=False).returncode == 0:
                pass
            _run([*ipt, "-F", chain], check=False)
            _run([*ipt, "-X", chain], check=False)
        # What the CNI plugins left behind (only after a crash), then kubelet's and
        # kube-proxy's chains, IPv4 and IPv6.
        for rule in nodeplan.cni_leftover_rules(_run([*ipt, "-S"], check=False).stdout):
            _run([*ipt, *nodeplan.delete_rule(rule)], check=False)
        for tool in ("iptables", "ip6tables"):
            for table in nodeplan.KUBE_TABLES:
                cmd = [tool, "-w", "-t", table]
                rules = _run([*cmd, "-S"], check=False).stdout
                for args in nodeplan.kube_chain_cleanup(rules):
                    _run([*cmd, *args], check=False)
        # Pods' network namespaces and veths left by a crash: those with a pod address.
        for netns in self._pod_namespaces():
            _run(["ip", "netns", "delete", netns], check=False)
        _run(["ip", "link", "delete", nodeplan.BRIDGE], check=False)
        with contextlib.suppress(OSError):
            shutil.rmtree(self._paths(ctx).cni_ipam_dir)

    def env(self, ctx: Context) -> dict[str, str]:
        if not enabled():
            return {}
        c = ctx.config
        host = nodeplan.NODE_IP
        creds = c.credentials
        return {
            "MOBILEPLANE_NODE_NAME": nodeplan.NODE_NAME,
            "MOBILEPLANE_NODE_IP": host,
            "MOBILEPLANE_NODE_CONTAINERD": str(self._paths(ctx).containerd_socket),
            # The stack's services as pods reach them (the same ports, at the node's address).
            "MOBILEPLANE_POD_DATABASE_URL": (
                f"postgresql://mobileplane:{creds.postgres_password}@{host}:"
                f"{c.ports['postgres']}/mobileplane"
            ),
            "MOBILEPLANE_POD_REDIS_URL": f"redis://{host}:{c.ports['redis']}/0",
            "MOBILEPLANE_POD_AWS_ENDPOINT_URL": f"http://{host}:{c.ports['s3']}",
            "MOBILEPLANE_POD_UNLEASH_URL": f"http://{host}:{c.ports['unleash']}/api",
        }
