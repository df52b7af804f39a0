"""What the MobilePlatform operator costs over applying its output by hand, and its memory.

Candidate: N MobilePlatforms created at once (one ``kubectl apply --server-side``) while the
real operator runs as a subprocess (``kopf run --standalone -m mobileplane.operator.handlers``),
timed until every one of them reports ``Ready=True``.

Reference: ``kubectl apply --server-side`` of exactly the children the operator would render
for those N platforms (:func:`mobileplane.operator.render.render` with the inputs
``reconcile.py`` builds: the same spec, the database target from the admin Secret, a fixed fake
password and a generated signing KeySet), timed until every one of their Deployments is
Available. One file per platform, applied by 8 kubectl processes at a time
(``--kubectl-jobs``), as the operator works on many platforms at once; ``--kubectl-jobs 1``
applies everything with a single kubectl.

Both sides wait for the same scheduler, controller-manager and kwok work (10 pods per
platform), so ``candidate / reference`` isolates what the operator adds: provisioning each
database and role, rendering, applying child by child, reconciling on every child event, the
status. Each side starts with nothing in its namespace and the operator idle; rendering and
writing the reference's YAML happen before its clock starts.

Set-up, chosen so the bench needs no storage and disturbs nothing else on a shared stack:

- **Database External** on the stack's PostgreSQL (an admin Secret per namespace made from
  ``DATABASE_URL``; role ``mobileplane`` may create databases and roles), ``deletionPolicy:
  Delete``, so the operator's finalizer drops every database and role it made. **Cache
  InCluster** (a Redis Deployment), no media bucket, everything else defaulted.
- **All N platforms of one side and round in one namespace** ``mpbench-<run>-…``; the
  operator watches that namespace only (``--namespace``, not ``--all-namespaces``: other
  sessions' MobilePlatforms on the same stack must not be reconciled, nor their deletion
  finalized, by this operator). Per resource kind that is one watch, as with
  ``--all-namespaces``.
- **Its own fake node.** The stack's kwok node is shared with whatever else runs (other
  sessions' tests fill it) and its capacity (110 pods until 0b372ce, 1000 since) is at most
  what N=100 needs. The bench adds a node ``mpbench-<run>`` with room for its pods, tainted so
  nothing else lands there, and a mutating webhook (served by this process, scoped to the
  bench's namespaces by label) that adds the toleration and a nodeSelector to the bench's
  pods. Both sides' pods go through it alike; node and webhook are removed at the end.

The operator's memory is sampled from ``/proc/<pid>/status`` (VmRSS, and the kernel's peak
VmHWM) every 0.25 s, with its CPU time from ``/proc/<pid>/stat``. Cleanup: the
MobilePlatforms are deleted while the operator still runs (it drops the databases), then the
operator stops and the namespace goes; every wait before the next measurement runs until the
namespace is gone. Whatever remains after an interruption (finalizers, databases named
``mpb_<run>_…``) is removed at exit.

``--probe`` wraps the operator's reconcile, apply and thread hand-off to count and time them
(printed per operator run): for finding bottlenecks, not for recorded numbers. ``--linger S``
keeps watching the operator for S seconds once all are Ready: its CPU, and which children it
keeps rewriting although nothing changes.

Run: ``.venv/bin/python bench/bench_operator.py [--counts 50,100] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import urllib3
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from harness import RatioResult, summarize
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from psycopg import sql

from mobileplane.operator.crdgen import GROUP, PLURAL, VERSION
from mobileplane.operator.keys import KeySet, generate, rotate
from mobileplane.operator.render import (
    DatabaseTarget,
    GeneratedMaterial,
    PlatformRef,
    RenderInput,
    render,
)
from mobileplane.operator.spec import MobilePlatformSpec
from mobileplane.stack import kubeplan, manager

ADMIN_SECRET = "bench-postgres-admin"  # noqa: S105  (the name of a Secret)
RUN_LABEL = "mobileplane.io/bench-run"
TAINT_KEY = "mobileplane.io/bench"
FAKE_PASSWORD = "bench-fixed-fake-password"  # noqa: S105  (the reference's generated material)
FAKE_SYNC_KEYS = "bench-fixed-fake-sync-checkpoint-key-0123456"  # the same, for sync
POLL_SECONDS = 1.0
PROGRESS_SECONDS = 10.0
MiB = 1024 * 1024


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_for(
    check: Callable[[], tuple[bool, str]], timeout: float, what: str, every: float = POLL_SECONDS
) -> float:
    """Poll ``check`` (done?, progress) until done; print progress; return seconds waited."""
    start = time.monotonic()
    last_report = start
    detail = ""
    while True:
        try:
            done, detail = check()
        except (urllib3.exceptions.HTTPError, OSError) as e:
            # The shared stack's API server may restart under us (its own tests do that):
            # keep waiting, the clock keeps running, and the progress line says why.
            done, detail = False, f"API server unreachable ({type(e).__name__})"
        now = time.monotonic()
        if done:
            return now - start
        if now - start > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} ({detail})")
        if now - last_report >= PROGRESS_SECONDS:
            say(f"  {what}: {detail} after {now - start:.0f} s")
            last_report = now
        time.sleep(every)


def retrying(what: str, fn: Callable[[], object], tries: int = 8, delay: float = 5.0) -> None:
    """Cleanup that outlives a restart of the API server; says so when it cannot."""
    for attempt in range(tries):
        try:
            fn()
            return
        except Exception as e:  # urllib3's connection errors, ApiException, timeouts
            if attempt == tries - 1:
                say(f"warning: could not {what}: {e}; remove it by hand")
                return
            time.sleep(delay)


def _ignore_404(fn: Callable[[], object]) -> Callable[[], None]:
    def call() -> None:
        try:
            fn()
        except k8s.ApiException as e:
            if e.status != 404:
                raise

    return call


def operator_version() -> str:
    """The last commit of operator/, and a digest when the work tree changes it (what ran)."""
    root = Path(__file__).resolve().parents[1]

    def git(*argv: str) -> str:
        out = subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True, check=False)
        return out.stdout.strip()

    head = git("log", "-1", "--format=%h", "--", "operator") or "unknown"
    if not git("status", "--porcelain", "--", "operator"):
        return f"operator/ as of {head}"
    digest = hashlib.sha256()
    for path in sorted((root / "operator").rglob("*.py")):
        digest.update(path.read_bytes())
    return f"operator/ as of {head} + work-tree changes {digest.hexdigest()[:10]}"


# -- the cluster -----------------------------------------------------------------------------


@dataclass
class Cluster:
    env: dict[str, str]
    api: k8s.ApiClient
    kubectl: str
    run: str
    #: Keys of the admin Secret (host, port, username, password, database).
    admin: dict[str, str]
    namespaces: list[str] = field(default_factory=list)

    @property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api)

    @property
    def custom(self) -> k8s.CustomObjectsApi:
        return k8s.CustomObjectsApi(self.api)

    def deployments(self, namespace: str) -> list[dict[str, Any]]:
        """As plain JSON: cheaper than the client's models for hundreds of items."""
        resp = k8s.AppsV1Api(self.api).list_namespaced_deployment(
            namespace, _preload_content=False, _request_timeout=30
        )
        items: list[dict[str, Any]] = json.loads(resp.data)["items"]
        return items

    def kubectl_apply(self, path: Path, manager_name: str) -> None:
        out = subprocess.run(
            [
                self.kubectl,
                "apply",
                "--server-side",
                f"--field-manager={manager_name}",
                "-f",
                str(path),
            ],
            env={**os.environ, "KUBECONFIG": self.env["KUBECONFIG"]},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=900,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"kubectl apply failed ({out.returncode}): {out.stderr[-2000:]}")

    def create_namespace(self, name: str) -> None:
        self.core.create_namespace(
            k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels={RUN_LABEL: self.run}))
        )
        self.namespaces.append(name)
        self.core.create_namespaced_secret(
            name,
            k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=ADMIN_SECRET), string_data=self.admin),
        )

    def delete_namespace(self, name: str, timeout: float) -> float:
        with contextlib.suppress(k8s.ApiException):
            self.core.delete_namespace(name)

        def gone() -> tuple[bool, str]:
            try:
                ns = self.core.read_namespace(name)
            except k8s.ApiException as e:
                if e.status == 404:
                    return True, "gone"
                raise
            left = [c.message for c in (ns.status.conditions or []) if c.status == "True"]
            return False, "; ".join(left)[:200] or "terminating"

        took = wait_for(gone, timeout, f"namespace {name} to go", every=2.0)
        with contextlib.suppress(ValueError):
            self.namespaces.remove(name)
        return took

    def platforms(self, namespace: str) -> list[dict[str, Any]]:
        resp = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, _preload_content=False, _request_timeout=30
        )
        items: list[dict[str, Any]] = json.loads(resp.data)["items"]
        return items

    def drop_leftover_databases(self) -> list[str]:
        """Databases and roles of this run that nothing dropped (there should be none)."""
        like = f"mpb\\_{self.run}\\_%"
        dropped = []
        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            for (name,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (like,)
            ).fetchall():
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
                dropped.append(f"database {name}")
            for (name,) in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (like,)
            ).fetchall():
                # As the provisioner does: a non-superuser admin must be a member of the role
                # to drop what it owns (the membership goes with the role).
                role = sql.Identifier(name)
                conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
                conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
                dropped.append(f"role {name}")
        return dropped


def connect(run: str) -> Cluster:
    env = manager.env()
    api = k8s_config.new_client_from_config(config_file=env["KUBECONFIG"])
    pg = psycopg.conninfo.conninfo_to_dict(env["DATABASE_URL"])
    admin = {
        "host": str(pg["host"]),
        "port": str(pg["port"]),
        "username": str(pg["user"]),
        "password": str(pg["password"]),
        "database": str(pg["dbname"]),
    }
    kubectl = os.environ.get("KUBECTL", "kubectl")
    return Cluster(env=env, api=api, kubectl=kubectl, run=run, admin=admin)


# -- a node of the bench's own, and a webhook that sends the bench's pods to it ---------------


def _certificates(workdir: Path) -> tuple[bytes, Path, Path]:
    """(CA PEM, server cert file, server key file) for a webhook on 127.0.0.1."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mpbench-webhook-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mpbench-webhook")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = workdir / "webhook.crt", workdir / "webhook.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file


def _mutator(node: str, run: str) -> type[BaseHTTPRequestHandler]:
    toleration = {"key": TAINT_KEY, "operator": "Equal", "value": run, "effect": "NoSchedule"}

    class Mutator(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            request = review["request"]
            spec = (request.get("object") or {}).get("spec") or {}
            patch: list[dict[str, Any]] = []
            if spec.get("tolerations"):
                patch.append({"op": "add", "path": "/spec/tolerations/-", "value": toleration})
            else:
                patch.append({"op": "add", "path": "/spec/tolerations", "value": [toleration]})
            if spec.get("nodeSelector"):
                path = "/spec/nodeSelector/kubernetes.io~1hostname"
                patch.append({"op": "add", "path": path, "value": node})
            else:
                value = {"kubernetes.io/hostname": node}
                patch.append({"op": "add", "path": "/spec/nodeSelector", "value": value})
            body = json.dumps(
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {
                        "uid": request["uid"],
                        "allowed": True,
                        "patchType": "JSONPatch",
                        "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
                    },
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Mutator


@contextlib.contextmanager
def bench_node(cluster: Cluster, workdir: Path, pods: int) -> Iterator[str]:
    """A tainted kwok node with room for ``pods``, and a webhook steering the bench's pods."""
    node = f"mpbench-{cluster.run}"
    ca_pem, cert_file, key_file = _certificates(workdir)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _mutator(node, cluster.run))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    # The handshake happens in the handler's thread, not in the accepting loop.
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    port = server.server_address[1]
    admission = k8s.AdmissionregistrationV1Api(cluster.api)
    body = kubeplan.fake_node(node)
    capacity = {"cpu": "4000", "memory": "16Ti", "pods": str(pods)}
    body["status"] = {"allocatable": capacity, "capacity": capacity}
    body["spec"] = {"taints": [{"key": TAINT_KEY, "value": cluster.run, "effect": "NoSchedule"}]}
    meta: Any = body["metadata"]
    meta["labels"][RUN_LABEL] = cluster.run
    try:
        cluster.core.create_node(body)

        def ready() -> tuple[bool, str]:
            n = cluster.core.read_node(node)
            ok = any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            return ok, "not Ready yet"

        wait_for(ready, 60, f"node {node} to be Ready")
        admission.create_mutating_webhook_configuration(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": node, "labels": {RUN_LABEL: cluster.run}},
                "webhooks": [
                    {
                        "name": "pods.bench.mobileplane.io",
                        "clientConfig": {
                            "url": f"https://127.0.0.1:{port}/mutate",
                            "caBundle": base64.b64encode(ca_pem).decode(),
                        },
                        "rules": [
                            {
                                "operations": ["CREATE"],
                                "apiGroups": [""],
                                "apiVersions": ["v1"],
                                "resources": ["pods"],
                            }
                        ],
                        "namespaceSelector": {"matchLabels": {RUN_LABEL: cluster.run}},
                        "failurePolicy": "Fail",
                        "sideEffects": "None",
                        "admissionReviewVersions": ["v1"],
                        "timeoutSeconds": 10,
                    }
                ],
            }
        )
        say(f"node {node} (room for {pods} pods, tainted) and its webhook on port {port}")
        yield node
    finally:
        retrying(
            f"delete the MutatingWebhookConfiguration {node}",
            _ignore_404(lambda: admission.delete_mutating_webhook_configuration(node)),
        )
        server.shutdown()
        server.server_close()

        def remove_node() -> None:
            stray = cluster.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}")
            if stray.items:
                say(f"note: {len(stray.items)} pods still on {node} when removing it")
            _ignore_404(lambda: cluster.core.delete_node(node))()

        retrying(f"delete the node {node}", remove_node)


# -- what both sides create ------------------------------------------------------------------


def platform_name(i: int) -> str:
    return f"p{i:03d}"


def platform_spec(dbname: str, i: int) -> dict[str, Any]:
    return {
        "app": {"displayName": f"Bench {i}", "ios": {"bundleIds": [f"com.example.bench{i}"]}},
        "database": {
            "mode": "External",
            "name": dbname,
            "external": {"adminSecretRef": {"name": ADMIN_SECRET}},
            "deletionPolicy": "Delete",
        },
        "cache": {"mode": "InCluster"},
    }


def database_name(cluster: Cluster, namespace: str, i: int) -> str:
    tag = re.sub(r"[^a-z0-9]", "", namespace.rsplit(cluster.run, 1)[-1])
    return f"mpb_{cluster.run}_{tag}_{i:03d}"


def rendered_children(cluster: Cluster, namespace: str, n: int) -> list[list[dict[str, Any]]]:
    """What the operator would apply for each of N platforms, built as ``reconcile.py`` does."""
    now = dt.datetime.now(dt.UTC)
    out: list[list[dict[str, Any]]] = []
    for i in range(n):
        dbname = database_name(cluster, namespace, i)
        spec = MobilePlatformSpec.model_validate(platform_spec(dbname, i))
        keyset = rotate(
            KeySet(), generate(spec.auth.signing_algorithm, now), spec.auth.key_rotation, now
        )
        inp = RenderInput(
            platform=PlatformRef(name=platform_name(i), namespace=namespace, uid=str(uuid.uuid4())),
            spec=spec,
            database=DatabaseTarget(
                host=cluster.admin["host"],
                port=int(cluster.admin["port"]),
                name=dbname,
                role=dbname,
                sslmode=cluster.admin.get("sslmode"),
            ),
            generated=GeneratedMaterial(
                db_password=FAKE_PASSWORD,
                signing_keys=keyset,
                sync_checkpoint_keys=FAKE_SYNC_KEYS,
            ),
        )
        children = render(inp)
        for child in children:
            child.setdefault("metadata", {})["namespace"] = namespace
        out.append(children)
    return out


def platform_objects(cluster: Cluster, namespace: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MobilePlatform",
            "metadata": {"name": platform_name(i), "namespace": namespace},
            "spec": platform_spec(database_name(cluster, namespace, i), i),
        }
        for i in range(n)
    ]


def _available(deployment: dict[str, Any]) -> bool:
    conditions = (deployment.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)


def _ready(platform: dict[str, Any]) -> bool:
    conditions = (platform.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


# -- the operator as a subprocess ------------------------------------------------------------


@dataclass
class Memory:
    idle_rss: int = 0  # bytes, after start-up, before any MobilePlatform
    rss_at_ready: int = 0
    hwm_at_ready: int = 0  # the kernel's peak RSS up to the moment all were Ready
    hwm_total: int = 0  # … up to the operator's exit (deprovisioning included)
    max_threads: int = 0
    cpu_at_ready: float = 0.0  # seconds of user+system CPU since the clock started


def _status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def _kib(value: str) -> int:
    return int(value.split()[0]) * 1024


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: ``--probe``: a module kopf runs instead of the handlers module. It imports them (so the same
#: handlers register) and wraps ``reconcile`` (and ``observe``, where it exists), the
#: server-side apply and ``asyncio.to_thread`` to log, per reconcile: its duration, the
#: applies so far, how many reconciles were in flight, and how long gateway calls waited for a
#: worker thread (the time between ``to_thread`` and the call starting in a thread).
PROBE = """
import asyncio
import logging
import time

import mobileplane.operator.handlers as handlers
from mobileplane.operator.kube import KubeGateway

log = logging.getLogger("mpbench.probe")
state = {"applies": 0, "inflight": 0, "calls": 0, "wait": 0.0, "wait_max": 0.0}
_apply = KubeGateway._apply_sync
_to_thread = asyncio.to_thread


def _counted_apply(self, obj):
    state["applies"] += 1
    return _apply(self, obj)


async def _timed_to_thread(func, /, *args, **kwargs):
    submitted = time.monotonic()

    def call():
        waited = time.monotonic() - submitted
        state["calls"] += 1
        state["wait"] += waited
        state["wait_max"] = max(state["wait_max"], waited)
        return func(*args, **kwargs)

    return await _to_thread(call)


def _wrap(kind, fn):
    async def timed(deps, body):
        state["inflight"] += 1
        inflight = state["inflight"]
        start = time.monotonic()
        try:
            return await fn(deps, body)
        finally:
            state["inflight"] -= 1
            log.warning(
                "mpbench-%s name=%s seconds=%.3f applies=%d inflight=%d calls=%d "
                "thread_wait_total=%.1f thread_wait_max=%.2f",
                kind, body["metadata"]["name"], time.monotonic() - start, state["applies"],
                inflight, state["calls"], state["wait"], state["wait_max"],
            )

    return timed


KubeGateway._apply_sync = _counted_apply
asyncio.to_thread = _timed_to_thread
handlers.reconcile = _wrap("reconcile", handlers.reconcile)
if hasattr(handlers, "observe"):
    handlers.observe = _wrap("observe", handlers.observe)
"""


class Operator:
    """``kopf run`` of the operator, watching one namespace, with its memory sampled."""

    def __init__(self, cluster: Cluster, namespace: str, log: Path, probe: Path | None) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.log = log
        self.probe = probe
        self.memory = Memory()
        self.proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self.rss = 0

    def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        kopf = str(Path(sys.executable).parent / "kopf")
        env = {
            **os.environ,
            "KUBECONFIG": self.cluster.env["KUBECONFIG"],
            "MOBILEPLANE_OPERATOR_STANDALONE": "true",
        }
        module = "mobileplane.operator.handlers"
        if self.probe is not None:
            env["PYTHONPATH"] = str(self.probe.parent)
            module = self.probe.stem
        args = [
            kopf,
            "run",
            "--standalone",
            "--namespace",
            self.namespace,
            f"--liveness=http://127.0.0.1:{port}/healthz",
            "-m",
            module,
        ]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)

        def healthy() -> tuple[bool, str]:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the operator exited ({self.proc.returncode}); see {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    return r.status == 200, f"HTTP {r.status}"
            except (urllib.error.URLError, OSError) as e:
                return False, str(e)

        wait_for(healthy, 60, "the operator to start", every=0.25)
        time.sleep(1.0)  # the watch streams open just after start-up
        self.memory.idle_rss = _kib(_status(self.proc.pid)["VmRSS"])
        self._sampler = threading.Thread(target=self._sample, name="rss", daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        assert self.proc is not None
        while not self._stop.is_set() and self.proc.poll() is None:
            try:
                st = _status(self.proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            self.rss = _kib(st["VmRSS"])
            self.memory.hwm_total = max(self.memory.hwm_total, _kib(st["VmHWM"]))
            self.memory.max_threads = max(self.memory.max_threads, int(st["Threads"]))
            self._stop.wait(0.25)

    def cpu(self) -> float:
        assert self.proc is not None
        return _cpu_seconds(self.proc.pid)

    def mark_ready(self, cpu_start: float) -> None:
        assert self.proc is not None
        st = _status(self.proc.pid)
        self.memory.rss_at_ready = _kib(st["VmRSS"])
        self.memory.hwm_at_ready = _kib(st["VmHWM"])
        self.memory.cpu_at_ready = self.cpu() - cpu_start

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self._stop.set()
            return
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            self.memory.hwm_total = max(
                self.memory.hwm_total, _kib(_status(self.proc.pid)["VmHWM"])
            )
        self._stop.set()
        self.proc.terminate()  # kopf stops gracefully on SIGTERM
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


# -- one measurement of each side ------------------------------------------------------------


@dataclass
class Args:
    counts: list[int]
    rounds: int
    timeout: float
    workdir: Path
    kubectl_jobs: int
    probe: bool
    linger: float


def write_yaml(docs: list[dict[str, Any]], path: Path) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def reference(cluster: Cluster, args: Args, n: int, r: int) -> float:
    namespace = f"mpbench-{cluster.run}-ref-n{n}-r{r}"
    cluster.create_namespace(namespace)
    try:
        per_platform = rendered_children(cluster, namespace, n)
        children = [c for platform in per_platform for c in platform]
        expected = sum(1 for c in children if c["kind"] == "Deployment")
        if args.kubectl_jobs == 1:
            files = [write_yaml(children, args.workdir / f"{namespace}.yaml")]
        else:
            files = [
                write_yaml(docs, args.workdir / f"{namespace}-{platform_name(i)}.yaml")
                for i, docs in enumerate(per_platform)
            ]
        say(
            f"reference N={n} round {r + 1}: applying {len(children)} rendered children "
            f"({len(files)} files, {min(args.kubectl_jobs, len(files))} kubectl at a time)"
        )
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.kubectl_jobs) as pool:
            list(pool.map(lambda f: cluster.kubectl_apply(f, "mpbench-reference"), files))
        applied = time.monotonic() - start

        def available() -> tuple[bool, str]:
            items = cluster.deployments(namespace)
            done = sum(1 for d in items if _available(d))
            return done >= expected, f"{done}/{expected} Deployments Available"

        wait_for(available, args.timeout, f"reference N={n}")
        took = time.monotonic() - start
        say(f"reference N={n} round {r + 1}: {took:.1f} s (kubectl apply {applied:.1f} s)")
        return took
    finally:
        cluster.delete_namespace(namespace, args.timeout)


@dataclass
class OperatorRun:
    seconds: float
    memory: Memory
    deprovision_seconds: float
    log: Path
    log_summary: dict[str, Any]
    version: str
    #: ``--linger``: what the operator does once every platform is Ready.
    settled: str | None = None


def settle(cluster: Cluster, op: Operator, namespace: str, seconds: float) -> str:
    """Watch the operator for ``seconds`` after all-Ready: CPU, and children it rewrites.

    With nothing changing, a settled operator writes nothing; every write to a child shows as
    a higher ``metadata.generation`` (spec writes) or ``resourceVersion``.
    """

    def children() -> dict[str, tuple[int, int]]:
        out = {}
        for kind, listing in (
            ("NetworkPolicy", k8s.NetworkingV1Api(cluster.api).list_namespaced_network_policy),
            ("Deployment", k8s.AppsV1Api(cluster.api).list_namespaced_deployment),
            ("ConfigMap", cluster.core.list_namespaced_config_map),
            ("Service", cluster.core.list_namespaced_service),
        ):
            for item in listing(namespace).items:
                key = f"{kind}/{item.metadata.name}"
                out[key] = (item.metadata.generation or 0, int(item.metadata.resource_version))
        return out

    before = children()
    cpu0, t0 = op.cpu(), time.monotonic()
    time.sleep(seconds)
    cpu, elapsed = op.cpu() - cpu0, time.monotonic() - t0
    after = children()
    rewritten: dict[str, int] = {}
    for key, (generation, rv) in after.items():
        old = before.get(key)
        if old is not None and (generation > old[0] or rv > old[1]):
            kind = key.split("/")[0]
            rewritten[kind] = rewritten.get(kind, 0) + 1
    bumps = sum(after[k][0] - before[k][0] for k in after if k in before)
    line = (
        f"settled {elapsed:.0f} s after all-Ready: operator CPU {100 * cpu / elapsed:.0f}% of a "
        f"core; children written meanwhile {rewritten or 'none'}, generation bumps {bumps}"
    )
    say(f"  {line}")
    return line


def _summarize_log(log: Path) -> dict[str, Any]:
    text = log.read_text(errors="replace")
    patterns = {
        "handler successes": r"Handler '[^']+' succeeded",
        "child-event handler successes": r"Handler 'child-[^']+' succeeded",
        "temporary failures": r"failed temporarily",
        "errors": r"\bERROR\b",
        "Kubernetes API errors": r"KubernetesApiError",
    }
    out: dict[str, Any] = {name: len(re.findall(p, text)) for name, p in patterns.items()}
    probe = re.compile(
        r"mpbench-(reconcile|observe) name=\S+ seconds=([\d.]+) applies=(\d+) inflight=(\d+) "
        r"calls=(\d+) thread_wait_total=([\d.]+) thread_wait_max=([\d.]+)"
    )
    found = probe.findall(text)
    for kind in ("reconcile", "observe"):
        seconds = sorted(float(f[1]) for f in found if f[0] == kind)
        if seconds:
            out[f"{kind}s"] = len(seconds)
            out[f"{kind} s median/p90/max"] = (
                f"{statistics.median(seconds):.2f}/{seconds[int(0.9 * (len(seconds) - 1))]:.2f}/"
                f"{seconds[-1]:.2f}"
            )
    if found:
        last = max(found, key=lambda f: int(f[4]))
        out["server-side applies"] = max(int(f[2]) for f in found)
        out["max in flight"] = max(int(f[3]) for f in found)
        out["gateway calls"] = int(last[4])
        out["thread wait s total/max"] = f"{float(last[5]):.1f}/{float(last[6]):.2f}"
    return out


def candidate(cluster: Cluster, args: Args, n: int, r: int) -> OperatorRun:
    namespace = f"mpbench-{cluster.run}-op-n{n}-r{r}"
    log = args.workdir / f"{namespace}.log"
    cluster.create_namespace(namespace)
    probe = None
    if args.probe:
        probe = args.workdir / "mpbench_probe.py"
        probe.write_text(PROBE)
    op = Operator(cluster, namespace, log, probe)
    version = operator_version()  # the code the subprocess is about to import
    try:
        op.start()
        path = write_yaml(
            platform_objects(cluster, namespace, n), args.workdir / f"{namespace}.yaml"
        )
        say(
            f"operator N={n} round {r + 1}: creating {n} MobilePlatforms "
            f"(operator idle RSS {op.memory.idle_rss / MiB:.0f} MiB)"
        )
        cpu_start = op.cpu()
        start = time.monotonic()
        cluster.kubectl_apply(path, "mpbench")

        def ready() -> tuple[bool, str]:
            items = cluster.platforms(namespace)
            done = sum(1 for p in items if _ready(p))
            return done >= n, f"{done}/{n} Ready, operator RSS {op.rss / MiB:.0f} MiB"

        wait_for(ready, args.timeout, f"operator N={n}")
        took = time.monotonic() - start
        op.mark_ready(cpu_start)
        say(
            f"operator N={n} round {r + 1}: {took:.1f} s; peak RSS "
            f"{op.memory.hwm_at_ready / MiB:.0f} MiB, CPU {op.memory.cpu_at_ready:.0f} s"
        )
        settled = settle(cluster, op, namespace, args.linger) if args.linger else None

        start = time.monotonic()
        cluster.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)

        def deleted() -> tuple[bool, str]:
            left = len(cluster.platforms(namespace))
            return left == 0, f"{left} MobilePlatforms left"

        wait_for(deleted, args.timeout, f"operator N={n}: deprovisioning")
        deprovision = time.monotonic() - start
        say(f"operator N={n} round {r + 1}: deprovisioned in {deprovision:.1f} s")
    finally:
        op.stop()
        _release(cluster, namespace)
        cluster.delete_namespace(namespace, args.timeout)
    return OperatorRun(took, op.memory, deprovision, log, _summarize_log(log), version, settled)


def _release(cluster: Cluster, namespace: str) -> None:
    """Remove finalizers the stopped operator can no longer honour (after a failure only)."""
    try:
        left = cluster.platforms(namespace)
    except k8s.ApiException:
        return
    for p in left:
        name = p["metadata"]["name"]
        with contextlib.suppress(k8s.ApiException):
            cluster.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"finalizers": None}}
            )
    if left:
        say(f"note: removed the finalizers of {len(left)} MobilePlatforms left in {namespace}")


# -- main ------------------------------------------------------------------------------------


def result_line(result: RatioResult, n: int, runs: list[OperatorRun]) -> str:
    peak = max(r.memory.hwm_at_ready for r in runs)
    peak_total = max(r.memory.hwm_total for r in runs)
    at_ready = statistics.median(r.memory.rss_at_ready for r in runs)
    idle = statistics.median(r.memory.idle_rss for r in runs)
    cpu = statistics.median(r.memory.cpu_at_ready for r in runs)
    return (
        f"{result.name}: candidate/reference = {result.ratio_median:.2f} "
        f"(min {result.ratio_min:.2f}, max {result.ratio_max:.2f}, {result.rounds} rounds; "
        f"medians {result.candidate_median_s:.1f} s vs {result.reference_median_s:.1f} s); "
        f"operator RSS idle {idle / MiB:.0f} MiB, at all-Ready {at_ready / MiB:.0f} MiB, "
        f"peak (VmHWM) {peak / MiB:.0f} MiB until Ready, {peak_total / MiB:.0f} MiB incl. "
        f"deprovisioning; operator CPU {cpu:.0f} s until Ready (N={n})"
    )


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="50,100", help="numbers of MobilePlatforms")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per count (each side)")
    parser.add_argument(
        "--timeout", type=float, default=1200, help="seconds each wait may take at most"
    )
    parser.add_argument(
        "--kubectl-jobs",
        type=int,
        default=8,
        help="reference: kubectl processes at a time, one per platform's children "
        "(1: a single kubectl for all)",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="count and time the operator's reconciles (patches the operator in its process: "
        "for finding bottlenecks, not for recorded numbers)",
    )
    parser.add_argument(
        "--linger",
        type=float,
        default=0,
        help="seconds to keep watching the operator once all are Ready (CPU, children it "
        "rewrites), before deprovisioning",
    )
    ns = parser.parse_args()
    counts = [int(c) for c in ns.counts.split(",") if c.strip()]
    if not counts or min(counts) < 1 or ns.rounds < 1 or ns.kubectl_jobs < 1:
        parser.error("--counts needs positive integers, --rounds and --kubectl-jobs at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="mpbench-"))
    return Args(
        counts=counts,
        rounds=ns.rounds,
        timeout=ns.timeout,
        workdir=workdir,
        kubectl_jobs=ns.kubectl_jobs,
        probe=ns.probe,
        linger=ns.linger,
    )


def measure(cluster: Cluster, args: Args, n: int) -> str:
    ref_t: list[float] = []
    runs: list[OperatorRun] = []
    for r in range(args.rounds):
        # Alternate which side goes first, as harness.compare does.
        order = ("reference", "operator") if r % 2 == 0 else ("operator", "reference")
        for side in order:
            if side == "reference":
                ref_t.append(reference(cluster, args, n, r))
            else:
                runs.append(candidate(cluster, args, n, r))
    name = f"operator: {n} MobilePlatforms Ready / kubectl apply of their children"
    if args.probe:
        name += " [probed operator: not a recordable number]"
    line = result_line(summarize(name, ref_t, [x.seconds for x in runs]), n, runs)
    for x in runs:
        say(f"  operator ({x.version}) log {x.log}: {x.log_summary}")
        if x.settled:
            say(f"  operator {x.settled}")
    say(line)
    return line


def _report_dropped(cluster: Cluster) -> None:
    dropped = cluster.drop_leftover_databases()
    if dropped:
        say(f"note: dropped what the operator left behind: {', '.join(dropped)}")


def main() -> None:
    args = parse_args()
    run = uuid.uuid4().hex[:6]
    cluster = connect(run)
    say(f"run {run}; {operator_version()}; logs and YAML in {args.workdir}")
    # A fresh stack has no CRDs yet: install the chart's (a no-op when they are current).
    crds = Path(__file__).resolve().parents[1] / "charts" / "mobileplane" / "crds"
    cluster.kubectl_apply(crds, "mobileplane-bench")
    lines: list[str] = []
    try:
        with bench_node(cluster, args.workdir, pods=12 * max(args.counts) + 100):
            try:
                for n in args.counts:
                    lines.append(measure(cluster, args, n))
            finally:
                for namespace in list(cluster.namespaces):
                    retrying(f"release {namespace}", lambda ns=namespace: _release(cluster, ns))
                    retrying(
                        f"delete the namespace {namespace}",
                        lambda ns=namespace: cluster.delete_namespace(ns, args.timeout),
                    )
    finally:
        retrying("drop leftover databases", lambda: _report_dropped(cluster))
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
