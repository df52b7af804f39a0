"""``mobileplane release promote|pause|resume|abort NAME``: steer a release by its control
annotation, and say what happened and what to do next.

The command does not decide anything: it sets ``release.mobileplane.io/control`` (the
controller applies it at its next look, removes it, records it in ``status.history`` and
posts an Event) and describes the release as it is now. It talks to the cluster of the
ambient kubeconfig (``KUBECONFIG``) or the in-cluster ServiceAccount.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from mobileplane.rollout.engine import Control
from mobileplane.rollout.state import CONTROL_ANNOTATION

GROUP, VERSION, PLURAL = "mobileplane.io", "v1alpha1", "mobilereleases"

NEXT = {
    Control.PROMOTE: "the current step finishes now (an approval step is approved)",
    Control.PROMOTE_FULL: "the release goes to 100% now",
    Control.PAUSE: "the release holds where it is until `mobileplane release resume`",
    Control.RESUME: "the release continues; if its gates still fail it stops again",
    Control.ABORT: "the release is halted: flags off, store rollout halted, app-config marks "
    "the version",
}


class CommandError(Exception):
    """The command could not be done; the message says why and what to do."""


@dataclass(frozen=True)
class Outcome:
    replaced: str | None  # a control still waiting to be applied, now replaced
    before: str  # the release as it was


def _api() -> k8s.ApiClient:
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
        return k8s.ApiClient()
    except ConfigException:
        path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
        try:
            api: k8s.ApiClient = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path
            )
        except (ConfigException, OSError) as e:
            raise CommandError(
                f"no cluster credentials: {e} (set KUBECONFIG, or run "
                '`eval "$(mobileplane stack env)"` for the local stack)'
            ) from e
        return api


def describe(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    steps = (obj.get("spec") or {}).get("steps") or []
    step = int(status.get("currentStep") or 0)
    phase = status.get("phase") or "Pending"
    kind = next(iter(steps[step]), "?") if step < len(steps) else "done"
    return f"phase {phase}, step {step + 1}/{len(steps)} ({kind}) at {status.get('weight', 0)}%"


def request(name: str, namespace: str, control: Control) -> Outcome:
    api = _api()
    try:
        custom = k8s.CustomObjectsApi(api)
        try:
            obj: Any = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except k8s.ApiException as e:
            if e.status == 404:
                raise CommandError(
                    f"no MobileRelease {name!r} in namespace {namespace!r} "
                    f"(list them: kubectl get mobilereleases -n {namespace})"
                ) from e
            raise CommandError(f"reading MobileRelease {namespace}/{name}: {e.reason}") from e
        pending = (obj["metadata"].get("annotations") or {}).get(CONTROL_ANNOTATION)
        patch = {"metadata": {"annotations": {CONTROL_ANNOTATION: control.value}}}
        try:
            custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)
        except k8s.ApiException as e:
            raise CommandError(
                f"cannot annotate MobileRelease {namespace}/{name}: {e.reason} "
                "(you need patch on mobilereleases)"
            ) from e
        return Outcome(replaced=pending, before=describe(obj))
    finally:
        api.close()  # type: ignore[no-untyped-call]
