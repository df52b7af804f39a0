"""Installing Debian packages for the stack, when we may (as root) and saying how when not."""

from __future__ import annotations

import os
import shutil

from mobileplane.stack.components.base import Context
from mobileplane.stack.errors import StackError


def apt_install(ctx: Context, component: str, packages: list[str]) -> None:
    fix = f"install them yourself: sudo apt-get install -y {' '.join(packages)}"
    if os.geteuid() != 0:
        raise StackError(component, f"Debian packages {packages} are missing", fix)
    if shutil.which("apt-get") is None:
        raise StackError(component, "apt-get is not available on this machine", fix)
    log = ctx.log(f"{component}-install")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    ctx.progress.run(
        component,
        "apt-get update",
        ["apt-get", "update", "-q"],
        log,
        env=env,
        fix="check the network access to the Debian mirrors, then retry",
    )
    ctx.progress.run(
        component,
        f"apt-get install {' '.join(packages)}",
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        log,
        env=env,
        fix=fix,
    )
