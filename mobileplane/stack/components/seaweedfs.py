"""A second S3 server, SeaweedFS, for the bucket settings versitygw does not implement.

The operator sets default encryption (SSE-S3), the public access block and a lifecycle
configuration on every media bucket. versitygw, the stack's main S3 server, answers
``NotImplemented`` to all three, so the provisioner's write-and-read-back path for them
would otherwise only ever meet a stub. SeaweedFS implements all three: with default
encryption on, an object written without encryption headers is encrypted at rest (its
data key wrapped by the server's KEK) and comes back ``ServerSideEncryption: AES256``; the
public access block is stored and refuses public ACLs; lifecycle rules are stored and read
back.

``weed mini`` runs master, volume server, filer and S3 gateway in one process. It is built
from the Go module proxy through a wrapper module (its go.mod has a replace directive, so
it cannot be ``go install``ed) and listens on ``MOBILEPLANE_SEAWEEDFS_PORT`` (S3) and the
:data:`INTERNAL_PORTS` ports after it (``weed mini`` has fixed defaults for all of them,
which two stacks on one machine would share). The S3 admin identity uses the stack's S3
credentials; the SSE-S3 key-encryption key is derived from a generated secret
(``WEED_S3_SSE_KEY``). Its anonymous usage report is switched off.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request

from mobileplane.stack.components.base import Context, Health, ensure_port_free, wait_until
from mobileplane.stack.gobuild import Build, module_gomod
from mobileplane.stack.versions import pin

REGION = "us-east-1"
BINARY = "weed"

#: Ports after the S3 port, in order: (flag, offset). gRPC ports default to HTTP + 10000,
#: which is above 65535 for the stack's ports, so every one is set.
INTERNAL_PORTS: tuple[tuple[str, int], ...] = (
    ("master.port", 1),
    ("master.port.grpc", 2),
    ("volume.port", 3),
    ("volume.port.grpc", 4),
    ("filer.port", 5),
    ("filer.port.grpc", 6),
    ("s3.port.grpc", 7),
    # The admin server runs even without its UI (it schedules maintenance).
    ("admin.port", 8),
    ("admin.port.grpc", 9),
)


def ports(s3_port: int) -> dict[str, int]:
    """Every port ``weed mini`` binds, by flag, for the S3 port ``s3_port``."""
    out = {"s3.port": s3_port}
    out.update({flag: s3_port + offset for flag, offset in INTERNAL_PORTS})
    return out


def wrapper_gomod(module: str, version: str, upstream_gomod: str) -> str:
    """A go.mod that requires ``module@version`` and repeats its replace directives.

    Replace directives apply only in the main module, so building the command from a
    wrapper needs them copied; without them ``go build`` resolves other versions than
    SeaweedFS is tested with.
    """
    go_line = re.search(r"^go (\S+)$", upstream_gomod, flags=re.MULTILINE)
    replaces = re.findall(r"^replace .+$", upstream_gomod, flags=re.MULTILINE)
    block = re.search(r"^replace \(\n(.*?)^\)", upstream_gomod, flags=re.MULTILINE | re.DOTALL)
    if block:
        replaces += [f"replace {line.strip()}" for line in block.group(1).splitlines() if line]
    lines = [
        "module mobileplane.local/seaweedfsbuild",
        "",
        f"go {go_line.group(1) if go_line else '1.24.0'}",
        "",
        f"require {module} {version}",
        "",
        *[r for r in replaces if not r.startswith("replace (")],
    ]
    return "\n".join(lines) + "\n"


def data_nodes(status: object) -> int:
    """How many volume servers the master's ``/dir/status`` answer lists."""
    if not isinstance(status, dict):
        return 0
    topology = status.get("Topology") or {}
    return sum(
        len(rack.get("DataNodes") or [])
        for dc in topology.get("DataCenters") or []
        for rack in dc.get("Racks") or []
    )


def identities(access_key: str, secret_key: str) -> dict[str, object]:
    """The S3 configuration: one admin identity with the stack's S3 credentials."""
    return {
        "identities": [
            {
                "name": "mobileplane-stack",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


class SeaweedFS:
    name = "seaweedfs"
    requires: tuple[str, ...] = ()

    def _build(self, ctx: Context) -> Build:
        return Build(ctx, self.name, pin(self.name).version)

    def installed(self, ctx: Context) -> bool:
        return self._build(ctx).complete([BINARY])

    def install(self, ctx: Context) -> None:
        b = self._build(ctx)
        if b.complete([BINARY]):
            return
        p = pin(self.name)
        b.reset()
        ctx.progress.say(self.name, f"fetching the go.mod of {p.source}@{p.version}")
        (b.root / "go.mod").write_text(
            wrapper_gomod(p.source, p.version, module_gomod(self.name, p.source, p.version))
        )
        command = f"{p.source}/weed"
        b.go("resolving SeaweedFS modules", ["get", "-tool", f"{command}@{p.version}"])
        b.go(
            f"building weed {p.version} (a cold build takes minutes)",
            ["build", "-trimpath", "-ldflags=-s -w", "-o", str(b.bin / BINARY), command],
        )
        b.mark_complete()

    def endpoint(self, ctx: Context) -> str:
        return f"http://{ctx.config.host}:{ctx.config.ports[self.name]}"

    def health(self, ctx: Context) -> Health:
        # An unsigned request is answered (403, AccessDenied) by a live S3 gateway; objects
        # can be written only once a volume server has joined the master.
        try:
            with urllib.request.urlopen(self.endpoint(ctx) + "/", timeout=3) as resp:
                status = resp.status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError as e:
            return Health(False, f"SeaweedFS S3 unreachable: {e}")
        master = f"http://{ctx.config.host}:{ports(ctx.config.ports[self.name])['master.port']}"
        try:
            with urllib.request.urlopen(master + "/dir/status", timeout=3) as resp:
                nodes = data_nodes(json.load(resp))
        except (OSError, ValueError) as e:
            return Health(False, f"SeaweedFS master unreachable: {e}")
        detail = f"seaweedfs {pin(self.name).version} (HTTP {status}, {nodes} volume server(s))"
        return Health(status in (200, 403) and nodes > 0, detail)

    def start(self, ctx: Context) -> None:
        if ctx.procs.alive(self.name) and self.health(ctx).healthy:
            ctx.progress.say(self.name, f"already running at {self.endpoint(ctx)}")
            return
        host = ctx.config.host
        bound = ports(ctx.config.ports[self.name])
        for port in bound.values():
            ensure_port_free(self.name, host, port, "MOBILEPLANE_SEAWEEDFS_PORT")
        state = ctx.config.component_state(self.name)
        data = state / "data"
        data.mkdir(parents=True, exist_ok=True)
        creds = ctx.config.credentials
        s3_config = state / "s3.json"
        # Created private: it holds the secret key (never readable by others, even briefly).
        fd = os.open(s3_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(identities(creds.s3_access_key, creds.s3_secret_key), f)
        argv = [
            str(self._build(ctx).bin / BINARY),
            "mini",
            f"-dir={data}",
            f"-ip={host}",
            f"-ip.bind={host}",
            f"-s3.config={s3_config}",
            "-s3.iam=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-admin.port.legacy=0",
            "-master.telemetry=false",
            *[f"-{flag}={port}" for flag, port in bound.items()],
        ]
        env = {"WEED_S3_SSE_KEY": creds.seaweedfs_sse_key}
        log = ctx.log(self.name)
        ctx.procs.start(self.name, argv, log, cwd=data, env=env)
        wait_until(
            self.name,
            "SeaweedFS start",
            lambda: self.health(ctx),
            timeout=60,
            fix="read the log; MOBILEPLANE_SEAWEEDFS_PORT and the 9 ports after it must be free",
            log=log,
            alive=lambda: ctx.procs.alive(self.name),
        )
        ctx.progress.say(self.name, f"ready at {self.endpoint(ctx)}")

    def stop(self, ctx: Context) -> list[str]:
        return [self.name] if ctx.procs.stop(self.name) else []

    def env(self, ctx: Context) -> dict[str, str]:
        # The same credentials as the main S3 server; only the endpoint differs.
        return {"MOBILEPLANE_SEAWEEDFS_ENDPOINT": self.endpoint(ctx)}
