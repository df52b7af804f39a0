"""How long a crash spike takes to stop a release: from the moment the crashing sessions are
stored by the telemetry service to the release's status saying ``Halted`` (and to the
app-config service telling installed apps, and the Unleash flag being off).

Set-up: a database of its own with every migration, the telemetry and app-config services
each under uvicorn in a process of its own, the release controller as a subprocess (``kopf run
--standalone --namespace <ns> -m mobileplane.rollout.controller``, the stack's kubeconfig) and
the stack's real Unleash. Each round creates a MobileRelease of a new version (10 %, then an
``analysis: 1h`` step), waits until the controller has looked at it and found too little data,
then sends 40 sessions (20 crashed, 20 users) with the real sentry-sdk; the clock starts when
``flush()`` returns (a 200 from the service means stored) and stops when each effect is seen
(polled every 20 ms).

What bounds it: the controller looks at a waiting release every ``max_requeue`` seconds (the
engine asks for 30 s; ``MOBILEPLANE_RELEASE_MAX_REQUEUE_SECONDS``) on a timer of ``tick``
seconds, so the expected worst case is about ``max_requeue + tick`` plus one measurement and
the provider calls. The ratio printed is the median latency over that bound.

Run: ``.venv/bin/python bench/bench_release.py [--rounds 5] [--tick 0.5] [--max-requeue 2]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import sentry_sdk
import uvicorn
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from psycopg import sql
from sentry_sdk.utils import event_from_exception

from mobileplane.services.kit.migrate import upgrade
from mobileplane.services.kit.mount import ServiceDefinition, create_service_app, migration_sets
from mobileplane.services.kit.settings import KitSettings
from mobileplane.stack import manager

ROOT = Path(__file__).resolve().parents[1]
KEY = "ba" * 16
PACKAGE = "com.example.bench"
GROUP, VERSION, PLURAL = "mobileplane.io", "v1alpha1", "mobilereleases"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service(name: str) -> ServiceDefinition:
    """One service's definition (only its own package is imported, not the platform's)."""
    definition: ServiceDefinition = importlib.import_module(
        f"mobileplane.services.{name}.service"
    ).SERVICE
    return definition


def _serve(name: str, database_url: str, redis_url: str, port: int) -> None:
    settings = KitSettings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=f"bench-{uuid.uuid4().hex[:6]}",
        log_level="WARNING",
    )
    app = create_service_app(service(name), settings=settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve(name: str, database_url: str, redis_url: str) -> tuple[str, Any]:
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(name, database_url, redis_url, port), daemon=True
    )
    process.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return base, process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not process.is_alive():
            raise RuntimeError(f"the {name} service did not start")
        time.sleep(0.1)


def send_spike(telemetry: str, release: str) -> None:
    scheme, _, host = telemetry.partition("://")
    sentry_sdk.init(
        dsn=f"{scheme}://{KEY}@{host}/telemetry/1",
        release=release,
        environment="production",
        default_integrations=False,
        auto_enabling_integrations=False,
        auto_session_tracking=False,
        traces_sample_rate=None,
    )
    try:
        for i in range(40):
            scope = sentry_sdk.get_isolation_scope()
            sentry_sdk.set_user({"id": f"user-{i % 20}"})
            scope.start_session(session_mode="application")
            if i % 2:
                try:
                    raise RuntimeError("boom")
                except RuntimeError:
                    client = sentry_sdk.get_client()
                    event, hint = event_from_exception(
                        sys.exc_info(), client.options, mechanism={"type": "b", "handled": False}
                    )
                    sentry_sdk.capture_event(event, hint=hint)
            scope.end_session()
        sentry_sdk.flush(timeout=30)
    finally:
        sentry_sdk.get_client().close(timeout=30)
        sentry_sdk.get_global_scope().set_client(None)


def wait_for(check: Any, timeout: float, what: str, poll: float = 0.02) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(poll)
    raise RuntimeError(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tick", type=float, default=0.5)
    parser.add_argument("--max-requeue", type=float, default=2.0)
    args = parser.parse_args()
    env = manager.env()
    admin_db = env["DATABASE_URL"]
    run = uuid.uuid4().hex[:6]
    dbname = f"bench_release_{run}"
    namespace = f"mpbench-release-{run}"
    flag = f"bench-release-{run}"
    with psycopg.connect(admin_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    db = admin_db.rsplit("/", 1)[0] + f"/{dbname}"
    os.environ["TELEMETRY_PROJECTS"] = json.dumps(
        [{"id": 1, "slug": "bench-android", "platform": "android", "keys": [{"public_key": KEY}]}]
    )
    os.environ["TELEMETRY_KEY_CACHE_SECONDS"] = "0"
    api = k8s_config.new_client_from_config(config_file=env["KUBECONFIG"])
    core = k8s.CoreV1Api(api)
    custom = k8s.CustomObjectsApi(api)
    unleash = httpx.Client(
        base_url=env["UNLEASH_URL"].removesuffix("/api"),
        headers={"Authorization": env["UNLEASH_ADMIN_TOKEN"]},
        timeout=10,
    )
    processes: list[Any] = []
    controller: subprocess.Popen[bytes] | None = None
    try:
        for ms in migration_sets([service("telemetry"), service("appconfig")]):
            upgrade(ms, db)
        telemetry, p1 = serve("telemetry", db, env["REDIS_URL"])
        appconfig, p2 = serve("appconfig", db, env["REDIS_URL"])
        processes += [p1, p2]
        crd = yaml.safe_load((ROOT / "crds" / "mobilerelease.yaml").read_text())
        ext = k8s.ApiextensionsV1Api(api)
        try:
            ext.create_custom_resource_definition(crd)
        except k8s.ApiException as e:
            if e.status != 409:
                raise
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace)))
        unleash.post(
            "/api/admin/projects/default/features", json={"name": flag, "type": "release"}
        ).raise_for_status()
        controller_env = {
            **os.environ,
            "KUBECONFIG": env["KUBECONFIG"],
            "MOBILEPLANE_RELEASE_STANDALONE": "true",
            "MOBILEPLANE_RELEASE_TICK_SECONDS": str(args.tick),
            "MOBILEPLANE_RELEASE_MAX_REQUEUE_SECONDS": str(args.max_requeue),
            "MOBILEPLANE_RELEASE_UNLEASH_URL": env["UNLEASH_URL"],
            "MOBILEPLANE_RELEASE_UNLEASH_TOKEN": env["UNLEASH_ADMIN_TOKEN"],
            "MOBILEPLANE_RELEASE_UNLEASH_ENVIRONMENT": "development",
        }
        controller = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kopf",
                "run",
                "--standalone",
                "--namespace",
                namespace,
                "-m",
                "mobileplane.rollout.controller",
            ],
            env=controller_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        halts: list[float] = []
        apps: list[float] = []
        flags_off: list[float] = []
        for i in range(args.rounds):
            version = f"9.{i}.0"
            name = f"bench-{i}"
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MobileRelease",
                "metadata": {
                    "name": name,
                    "annotations": {
                        "release.mobileplane.io/telemetry-url": telemetry,
                        "release.mobileplane.io/appconfig-url": appconfig,
                    },
                },
                "spec": {
                    "platformRef": {"name": "bench"},
                    "app": {"platform": "android", "version": version, "build": str(i)},
                    "steps": [{"setWeight": 10}, {"analysis": "1h"}, {"setWeight": 100}],
                    "gates": {
                        "minCrashFreeSessions": 90,
                        "minCrashFreeUsers": 80,
                        "minSessions": 20,
                        "minUsers": 10,
                    },
                    "flags": [{"name": flag}],
                    "store": {"kind": "none", "packageName": PACKAGE},
                },
            }
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

            def status(name: str = name) -> dict[str, Any]:
                obj: Any = custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name
                )
                return dict(obj.get("status") or {})

            wait_for(
                lambda: "not enough data" in str(status().get("lastAnalysis", {}).get("reasons")),
                120,
                f"{name} to wait for data",
                poll=0.2,
            )
            send_spike(telemetry, f"{PACKAGE}@{version}+{i}")
            t0 = time.monotonic()
            t_halt = wait_for(lambda: status().get("phase") == "Halted", 120, f"{name} halted")

            def app_knows(version: str = version) -> bool:
                r = httpx.get(f"{appconfig}/appconfig/bench", timeout=5)
                if r.status_code != 200:
                    return False
                halted = r.json()["platforms"].get("android", {}).get("halted_versions", [])
                return any(h["version"] == version for h in halted)

            t_app = wait_for(app_knows, 120, "app-config")

            def flag_off() -> bool:
                r = unleash.get(
                    f"/api/admin/projects/default/features/{flag}/environments/development"
                )
                return not r.json()["enabled"]

            t_flag = wait_for(flag_off, 120, "the flag off")
            halts.append(t_halt - t0)
            apps.append(t_app - t0)
            flags_off.append(t_flag - t0)
            print(
                f"round {i + 1}: halted {halts[-1]:.2f} s, app-config {apps[-1]:.2f} s, "
                f"flag off {flags_off[-1]:.2f} s after the spike was stored"
            )
            # Back on for the next round.
            unleash.post(f"/api/admin/projects/default/features/{flag}/environments/development/on")
        bound = args.tick + args.max_requeue
        print(
            f"crash spike -> Halted: median {statistics.median(halts):.2f} s, "
            f"max {max(halts):.2f} s over {args.rounds} rounds; app-config median "
            f"{statistics.median(apps):.2f} s; flag off median {statistics.median(flags_off):.2f} s"
        )
        print(
            f"  bound tick + max_requeue = {bound:.2f} s: median/bound = "
            f"{statistics.median(halts) / bound:.2f}"
        )
    finally:
        if controller is not None:
            controller.terminate()
            controller.wait(30)
        for process in processes:
            process.terminate()
            process.join(10)
        try:
            for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)[
                "items"
            ]:
                custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    item["metadata"]["name"],
                    {"metadata": {"finalizers": None}},
                )
            core.delete_namespace(namespace)
        except k8s.ApiException:
            pass
        unleash.delete(f"/api/admin/projects/default/features/{flag}")
        unleash.delete(f"/api/admin/archive/{flag}")
        unleash.close()
        api.close()
        with psycopg.connect(admin_db, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


if __name__ == "__main__":
    main()
