"""Names, labels and in-cluster addresses of a platform's children, decided in one place.

Every child is called ``<platform>-<suffix>``. A MobilePlatform's own name is a DNS-1123
*subdomain* (up to 253 characters, dots allowed, may start with a digit) while its children
have stricter rules: a Service name is a DNS-1035 *label* (63 characters, starts with a letter,
no dots), a StatefulSet's pods and a CronJob's Jobs append their own suffixes, and label values
stop at 63 characters. So the platform's name is first turned into a *base*: itself when it
is a DNS-1035 label of at most :data:`MAX_BASE` characters (both examples, and any sensible
name), otherwise a readable prefix plus a hash of the full name, which stays unique and
stable. The base is also the ``app.kubernetes.io/instance`` label value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from mobileplane.operator.render.inputs import PlatformRef, RenderInput

#: The longest suffix budget: a StatefulSet's name must leave room for the controller's
#: ``-<revision hash>`` label value (63 - 11 = 52), and ``-postgres`` takes 9 of those; the
#: migration Job's ``-migrate-<10 hex>`` (19) fits too. 52 - 9 = 43.
MAX_BASE = 43

#: The port every service listens on (named ``http``), and that the route table targets.
HTTP_PORT = 8080

APP_NAME = "mobileplane"
MANAGED_BY = "mobileplane-operator"

#: Pod-template annotation whose change rolls a Deployment when its configuration changed.
CONFIG_HASH_ANNOTATION = "mobileplane.io/config-hash"
#: Marks Secrets of generated material: the caller creates them once and never overwrites.
GENERATED_ANNOTATION = "mobileplane.io/generated"
#: The uid of the platform that generated a Secret (see ``PlatformRef.uid``).
PLATFORM_UID_ANNOTATION = "mobileplane.io/platform-uid"

#: Component label of children shared by the whole platform (config, policies).
PLATFORM_COMPONENT = "platform"

_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(value: str) -> bool:
    """Whether ``value`` is a DNS-1035 label (what a Service name must be)."""
    return len(value) <= 63 and bool(_DNS_1035.match(value))


def base_name(platform_name: str) -> str:
    """The platform name, or a valid, unique stand-in when it cannot prefix child names.

    >>> base_name("shop")
    'shop'
    >>> base_name("3d.shop")
    'mp-3d-shop-ea906cee'
    """
    if len(platform_name) <= MAX_BASE and _DNS_1035.match(platform_name):
        return platform_name
    digest = hashlib.sha256(platform_name.encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "-", platform_name.lower()).strip("-")
    if not slug[:1].isalpha():
        slug = f"mp-{slug}"
    room = MAX_BASE - len(digest) - 1
    return f"{slug[:room].rstrip('-')}-{digest}"


def child_name(platform: PlatformRef, suffix: str) -> str:
    """``<base>-<suffix>``: the name of one child."""
    return f"{base_name(platform.name)}-{suffix}"


def labels(platform: PlatformRef, component: str) -> dict[str, str]:
    """The recommended labels every child (and every pod) carries."""
    base = base_name(platform.name)
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": base,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": base,
    }


def platform_selector(platform: PlatformRef) -> dict[str, str]:
    """Labels every pod of the platform has (and no other platform's pod)."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": base_name(platform.name),
    }


def selector(platform: PlatformRef, component: str) -> dict[str, str]:
    """The immutable selector of one component's pods: never add a label that may change."""
    return {**platform_selector(platform), "app.kubernetes.io/component": component}


def metadata(
    platform: PlatformRef,
    name: str,
    component: str,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``metadata`` of a child: name, namespace, labels; owner references are the caller's."""
    out: dict[str, Any] = {
        "name": name,
        "namespace": platform.namespace,
        "labels": labels(platform, component),
    }
    if annotations:
        out["annotations"] = dict(annotations)
    return out


def service_host(platform: PlatformRef, service: str) -> str:
    """The cluster DNS name of a service's (or data store's) Service."""
    return f"{child_name(platform, service)}.{platform.namespace}.svc"


def service_url(platform: PlatformRef, service: str) -> str:
    """``http://<name>-<svc>.<ns>.svc:8080``: where the gateway (and peers) reach a service."""
    return f"http://{service_host(platform, service)}:{HTTP_PORT}"


def postgres_host(platform: PlatformRef) -> str:
    """Host of the in-cluster PostgreSQL, for the caller's :class:`DatabaseTarget`."""
    return service_host(platform, "postgres")


def gateway_url(inp: RenderInput) -> str:
    """Where apps reach the platform: ``https://<spec.gateway.host>`` when set, else the
    in-cluster ``http://<name>-gateway.<ns>.svc:8080``.

    This is also the OIDC issuer and the tokens' audience, so it should not change casually:
    tokens carry it.
    """
    if inp.spec.gateway.host:
        return f"https://{inp.spec.gateway.host}"
    return service_url(inp.platform, "gateway")


def image_ref(repository: str, tag: str) -> str:
    """``repository:tag``, or ``repository@sha256:…`` when the tag is a digest."""
    separator = "@" if tag.startswith("sha256:") else ":"
    return f"{repository}{separator}{tag}"
