"""Every key the operator gives a service is one the service reads.

The operator renders the ConfigMap and the pods' env; the services read them through their
settings classes with ``extra="ignore"``. Only the names tie the two together: a key renamed
on one side is silently dropped on the other (the service keeps its default). This test ties
them for every example and for a spec with every optional part set.
"""

from __future__ import annotations

from typing import Any

import pytest
from render_fixtures import EXAMPLES, MINIMAL, example_input, make_input, with_changes

from mobileplane.operator.render import RenderInput, render
from mobileplane.operator.render.config import consumed_config
from mobileplane.operator.spec import SERVICE_NAMES
from mobileplane.services.kit.envcheck import read_by
from mobileplane.services.runner import settings_classes

#: Rendered for the version that ships them, read by no service of this one yet.
NOT_SHIPPED = {"notifications"}

EVERYTHING = with_changes(
    MINIMAL,
    {
        "media": {"bucket": "hello-media", "credentialsSecretRef": {"name": "hello-media"}},
        "auth.email": {
            "from": "Hello <no-reply@hello.example.com>",
            "smtp": {"host": "smtp.example.com", "credentialsSecretRef": {"name": "relay"}},
        },
        "auth.members": [{"email": "ops@example.com", "scopes": ["telemetry:read"]}],
        "services.analytics.enabled": True,
    },
)


def _inputs() -> list[Any]:
    return [
        *(pytest.param(example_input(name), id=name) for name in EXAMPLES),
        pytest.param(make_input(EVERYTHING), id="everything"),
    ]


def _given(inp: RenderInput, service: str) -> set[str]:
    """The variables a service's pods get: the ConfigMap's keys it consumes and its env."""
    keys = set(consumed_config(inp, service))
    for obj in render(inp):
        if (
            obj["kind"] == "Deployment"
            and obj["metadata"]["labels"].get("app.kubernetes.io/component") == service
        ):
            for container in obj["spec"]["template"]["spec"]["containers"]:
                keys.update(e["name"] for e in container.get("env", []))
    return keys


@pytest.mark.parametrize("inp", _inputs())
@pytest.mark.parametrize("service", sorted(set(SERVICE_NAMES) - NOT_SHIPPED))
def test_every_key_a_service_is_given_is_read_by_its_settings(
    inp: RenderInput, service: str
) -> None:
    unread = _given(inp, service) - read_by(settings_classes(service))
    assert not unread, f"{service} is given {sorted(unread)} but reads none of them"


def test_the_check_sees_the_keys() -> None:
    """Not vacuous: the auth service is given its own keys and the shared ones."""
    keys = _given(make_input(EVERYTHING), "auth")
    assert {"AUTH_ISSUER", "AUTH_SMTP_PASSWORD", "DATABASE_URL", "REDIS_PREFIX"} <= keys
