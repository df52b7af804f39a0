"""An S3-compatible server: versitygw over a POSIX directory, built from the Go module proxy.

versitygw is maintained and speaks the S3 API that boto3 uses (buckets, multipart uploads,
SigV4 presigned URLs). It stores each bucket as a directory under ``<state>/s3/data``.
Clients must sign with SigV4 (boto3: ``signature_version="s3v4"``) and use path-style
addressing, since bucket subdomains of 127.0.0.1 do not resolve.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from mobileplane.stack.components.base import Context, Health, ensure_port_free, wait_until
from mobileplane.stack.gobuild import Build
from mobileplane.stack.versions import pin

REGION = "us-east-1"


class S3:
    name = "s3"
    requires: tuple[str, ...] = ()

    def _build(self, ctx: Context) -> Build:
        return Build(ctx, "versitygw", pin("versitygw").version)

    def installed(self, ctx: Context) -> bool:
        return self._build(ctx).complete(["versitygw"])

    def install(self, ctx: Context) -> None:
        if not self.installed(ctx):
            self._build(ctx).install(f"{pin('versitygw').source}/cmd/versitygw", ["versitygw"])

    def endpoint(self, ctx: Context) -> str:
        return f"http://{ctx.config.host}:{ctx.config.ports['s3']}"

    def health(self, ctx: Context) -> Health:
        # An unsigned request is answered (403, AccessDenied) by a live S3 server.
        try:
            with urllib.request.urlopen(self.endpoint(ctx) + "/", timeout=3) as resp:
                status = resp.status
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError as e:
            return Health(False, f"S3 unreachable: {e}")
        ok = status in (200, 403)
        return Health(ok, f"versitygw {pin('versitygw').version} (HTTP {status})")

    def start(self, ctx: Context) -> None:
        port = ctx.config.ports["s3"]
        if ctx.procs.alive(self.name) and self.health(ctx).healthy:
            ctx.progress.say(self.name, f"already running at {self.endpoint(ctx)}")
            return
        ensure_port_free(self.name, ctx.config.host, port, "MOBILEPLANE_S3_PORT")
        data = ctx.config.component_state(self.name) / "data"
        data.mkdir(parents=True, exist_ok=True)
        creds = ctx.config.credentials
        argv = [
            str(self._build(ctx).bin / "versitygw"),
            "--port",
            f"{ctx.config.host}:{port}",
            "--region",
            REGION,
            "--quiet",
            "posix",
            str(data),
        ]
        # Root credentials go through the environment, not the command line (ps shows argv).
        env = {
            "ROOT_ACCESS_KEY_ID": creds.s3_access_key,
            "ROOT_SECRET_ACCESS_KEY": creds.s3_secret_key,
        }
        log = ctx.log(self.name)
        ctx.procs.start(self.name, argv, log, cwd=data, env=env)
        wait_until(
            self.name,
            "S3 server start",
            lambda: self.health(ctx),
            timeout=30,
            fix="read the log (versitygw needs a filesystem with extended attributes)",
            log=log,
            alive=lambda: ctx.procs.alive(self.name),
        )
        ctx.progress.say(self.name, f"ready at {self.endpoint(ctx)}")

    def stop(self, ctx: Context) -> list[str]:
        return [self.name] if ctx.procs.stop(self.name) else []

    def env(self, ctx: Context) -> dict[str, str]:
        creds = ctx.config.credentials
        return {
            "AWS_ENDPOINT_URL": self.endpoint(ctx),
            "AWS_ACCESS_KEY_ID": creds.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": creds.s3_secret_key,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # boto3 >= 1.36 adds CRC checksums by default; send them only when required.
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }
