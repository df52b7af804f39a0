"""What the gateway costs: a JWT-protected GET through the gateway, against the same GET sent
straight to the upstream and through nginx ``proxy_pass``, all on this machine in one run;
plus the rate of access-token validation.

Three processes serve on loopback: the upstream (uvicorn, a tiny JSON answer and the JWKS),
the gateway (``create_gateway_app``, the route table inline, rate limits in the stack's Redis)
and nginx (keep-alive ``proxy_pass`` to the same upstream). The load generator (httpx, 16
requests in flight) alternates between the three targets round by round; each round reports
throughput and per-request latency (p50, p99). nginx comes from PATH or, if absent, from the
Debian package ``nginx`` unpacked into the cache (``apt-get download`` + ``dpkg-deb -x``, no
root needed); without it the nginx column is skipped and the output says so.

Run with ``.venv/bin/python bench/bench_gateway.py`` (needs the local stack's Redis).

Before/after a change to the gateway: ``BENCH_GATEWAY_BASELINE=<dir>`` adds a fourth target,
the gateway package from ``<dir>`` (e.g. ``git archive <rev> services/gateway | tar -x -C
/tmp/base``, then ``/tmp/base/services/gateway``), measured in the same rounds as the working
tree's, so both see the same machine load.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
from harness import summarize

from mobileplane.operator.keys import generate
from mobileplane.services.gateway.keyring import parse_jwks
from mobileplane.services.gateway.tokens import (
    TokenPolicy,
    check_claims,
    read_header,
    verify_signature,
)
from mobileplane.stack import manager

ISSUER = "https://bench.example"
REQUESTS = 2000
CONCURRENCY = 16
ROUNDS = 5

UPSTREAM = textwrap.dedent(
    """
    import json, sys
    import uvicorn
    JWKS = json.dumps({"keys": [json.loads(sys.argv[2])]}).encode()
    BODY = b'{"ok":true,"items":[1,2,3]}'
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = JWKS if scope["path"].endswith("jwks.json") else BODY
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)
    """
)

# Runs uvicorn with ``mobileplane.services.gateway`` imported from $GATEWAY_PACKAGE_DIR.
BASELINE_LAUNCHER = textwrap.dedent(
    """
    import importlib.util, os, sys
    src = os.environ["GATEWAY_PACKAGE_DIR"]
    import mobileplane.services
    spec = importlib.util.spec_from_file_location(
        "mobileplane.services.gateway",
        os.path.join(src, "__init__.py"),
        submodule_search_locations=[src],
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["mobileplane.services.gateway"] = module
    spec.loader.exec_module(module)
    import uvicorn.main
    sys.argv = ["uvicorn", *sys.argv[1:]]
    uvicorn.main.main()
    """
)

NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def find_nginx() -> str | None:
    """nginx from PATH, or the Debian package unpacked into the cache (None if neither)."""
    found = shutil.which("nginx")
    if found:
        return found
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mobileplane" / "nginx"
    binary = cache / "root" / "usr" / "sbin" / "nginx"
    if binary.exists():
        return str(binary)
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        return None
    cache.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", "nginx"], cwd=cache, check=True, capture_output=True)
        deb = next(cache.glob("nginx_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(cache / "root")], check=True)
    except (subprocess.CalledProcessError, StopIteration):
        return None
    return str(binary) if binary.exists() else None


async def load(url: str, headers: dict[str, str]) -> tuple[float, list[float]]:
    """Seconds for REQUESTS GETs with CONCURRENCY in flight, and each request's latency."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, headers=headers) as client:
        await client.get(url)  # open connections outside the measurement
        queue = iter(range(REQUESTS))

        async def worker() -> None:
            for _ in queue:
                start = time.perf_counter()
                response = await client.get(url)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return time.perf_counter() - start, latencies


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def token_rate(key_alg: str) -> None:
    key = generate(key_alg, datetime.now(UTC))
    ring = parse_jwks({"keys": [key.public_jwk]}, fetched_at=0)
    policy = TokenPolicy(ISSUER, ISSUER, frozenset({key_alg}))
    now = time.time()
    token = jwt.encode(
        {"iss": ISSUER, "aud": ISSUER, "sub": "u", "exp": now + 600, "scope": "sync", "sid": "s"},
        key.private_pem,
        algorithm=key_alg,
        headers={"kid": key.kid, "typ": "at+jwt"},
    )
    public = ring.keys[key.kid].key
    n = 2000

    def ours() -> None:
        for _ in range(n):
            header = read_header(token, policy)
            check_claims(verify_signature(token, header, ring.keys[header.kid]), policy, now)

    def plain_pyjwt() -> None:
        for _ in range(n):
            jwt.decode(token, public, algorithms=[key_alg], audience=ISSUER, issuer=ISSUER)

    ref, cand = [], []
    for i in range(ROUNDS):
        for fn, sink in [(plain_pyjwt, ref), (ours, cand)][:: 1 if i % 2 else -1]:
            start = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - start)
    result = summarize(f"{key_alg} token validation, gateway checks / bare pyjwt.decode", ref, cand)
    print(result.line())
    print(
        f"  {n / result.candidate_median_s:,.0f} validations/s (gateway), "
        f"{n / result.reference_median_s:,.0f}/s (pyjwt.decode), one core"
    )


def main() -> None:
    env = manager.env()
    key = generate("ES256", datetime.now(UTC))
    upstream_port, gateway_port, nginx_port = free_port(), free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    table = {
        "version": 1,
        "issuer": ISSUER,
        "audience": ISSUER,
        "algorithms": ["ES256"],
        "jwksURL": f"{upstream_url}/.well-known/jwks.json",
        "routes": [
            {
                "service": "sync",
                "pathPrefix": "/sync/",
                "upstream": upstream_url,
                "auth": {"mode": "jwt", "scopes": ["sync"]},
                "timeoutSeconds": 10,
                "retries": {"max": 2, "methods": ["GET"], "on": ["connect-failure"]},
                "maxBodyBytes": 65536,
            }
        ],
    }
    gateway_env = {
        **os.environ,
        "REDIS_URL": env["REDIS_URL"],
        "REDIS_PREFIX": f"bench-gw-{uuid.uuid4().hex[:6]}",
        "GATEWAY_ROUTES": json.dumps(table),
        "LOG_LEVEL": "WARNING",
        # Limits high enough never to refuse the benchmark, so their cost is measured.
        "GATEWAY_RATE_LIMIT_USER_REQUESTS": "100000000",
        "GATEWAY_RATE_LIMIT_IP_REQUESTS": "100000000",
    }
    python = sys.executable

    def uvicorn_args(port: int) -> list[str]:
        return [
            "--factory",
            "mobileplane.services.gateway.service:create_gateway_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]

    procs = [
        subprocess.Popen([python, "-c", UPSTREAM, str(upstream_port), json.dumps(key.public_jwk)]),
        subprocess.Popen([python, "-m", "uvicorn", *uvicorn_args(gateway_port)], env=gateway_env),
    ]
    baseline = os.environ.get("BENCH_GATEWAY_BASELINE")
    baseline_port = free_port()
    if baseline:
        procs.append(
            subprocess.Popen(
                [python, "-c", BASELINE_LAUNCHER, *uvicorn_args(baseline_port)],
                env={
                    **gateway_env,
                    "GATEWAY_PACKAGE_DIR": baseline,
                    "REDIS_PREFIX": gateway_env["REDIS_PREFIX"] + "-base",
                },
            )
        )
    nginx = find_nginx()
    workdir = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    if nginx:
        conf = workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=workdir, upstream=upstream_port, port=nginx_port))
        procs.append(
            subprocess.Popen([nginx, "-c", str(conf), "-p", str(workdir), "-g", "daemon off;"])
        )
    try:
        wait_ready(f"{upstream_url}/healthz")
        wait_ready(f"http://127.0.0.1:{gateway_port}/healthz")
        targets = {
            "direct": f"{upstream_url}/sync/items",
            "gateway": f"http://127.0.0.1:{gateway_port}/sync/items",
        }
        if baseline:
            wait_ready(f"http://127.0.0.1:{baseline_port}/healthz")
            targets["baseline"] = f"http://127.0.0.1:{baseline_port}/sync/items"
        if nginx:
            wait_ready(f"http://127.0.0.1:{nginx_port}/")
            targets["nginx"] = f"http://127.0.0.1:{nginx_port}/sync/items"
        else:
            print(
                "nginx: not available (not on PATH, apt-get download failed): measured without it"
            )
        token = jwt.encode(
            {
                "iss": ISSUER,
                "aud": ISSUER,
                "sub": "bench",
                "exp": time.time() + 3600,
                "scope": "sync",
                "sid": "bench-session",
                "jti": "b",
            },
            key.private_pem,
            algorithm="ES256",
            headers={"kid": key.kid, "typ": "at+jwt"},
        )
        headers = {"authorization": f"Bearer {token}"}
        # The gateways' own CPU per request: the figure least moved by a busy machine.
        pids = {"gateway": procs[1].pid} | ({"baseline": procs[2].pid} if baseline else {})
        cpu: dict[str, list[float]] = {name: [] for name in pids}
        totals: dict[str, list[float]] = {name: [] for name in targets}
        lat: dict[str, list[float]] = {name: [] for name in targets}
        names = list(targets)
        for r in range(ROUNDS + 1):
            order = names if r % 2 else list(reversed(names))
            for name in order:
                before = cpu_seconds(pids[name]) if name in pids else None
                seconds, latencies = asyncio.run(load(targets[name], headers))
                after = cpu_seconds(pids[name]) if name in pids else None
                if r:  # round 0 warms up
                    totals[name].append(seconds)
                    lat[name].extend(latencies)
                    if before is not None and after is not None:
                        cpu[name].append((after - before) / REQUESTS)
        print(f"{REQUESTS} GETs x {ROUNDS} rounds, {CONCURRENCY} in flight, JWT-protected route")
        for name in names:
            print(
                f"  {name:8s} {REQUESTS / statistics.median(totals[name]):8,.0f} req/s  "
                f"p50 {percentile(lat[name], 0.5) * 1000:6.2f} ms  "
                f"p99 {percentile(lat[name], 0.99) * 1000:6.2f} ms"
            )
        for name, per_request in cpu.items():
            if per_request:
                print(
                    f"  {name:8s} CPU {statistics.median(per_request) * 1e6:8,.0f} us per request "
                    "(the gateway process alone, user + system)"
                )
        print(
            summarize(
                "gateway / direct (time for the same requests)", totals["direct"], totals["gateway"]
            ).line()
        )
        if "baseline" in totals:
            print(
                summarize(
                    "gateway / baseline gateway (BENCH_GATEWAY_BASELINE)",
                    totals["baseline"],
                    totals["gateway"],
                ).line()
            )
        if "nginx" in totals:
            print(
                summarize("gateway / nginx proxy_pass", totals["nginx"], totals["gateway"]).line()
            )
            print(summarize("nginx proxy_pass / direct", totals["direct"], totals["nginx"]).line())
        p50_added = percentile(lat["gateway"], 0.5) - percentile(lat["direct"], 0.5)
        p99_added = percentile(lat["gateway"], 0.99) - percentile(lat["direct"], 0.99)
        print(
            f"  added latency by the gateway: p50 {p50_added * 1000:.2f} ms, "
            f"p99 {p99_added * 1000:.2f} ms"
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    token_rate("ES256")
    token_rate("RS256")


if __name__ == "__main__":
    main()
