"""The services a MobilePlatform can run are exactly those ``mobileplane serve`` knows.

The operator's pods run ``mobileplane serve <service>``: a service the spec lets a platform
enable but the image cannot serve would be a crash-looping Deployment.
"""

from __future__ import annotations

from mobileplane.operator.spec import SERVICE_NAMES, UNSHIPPED_SERVICES, MobilePlatformSpec
from mobileplane.services.runner import service_names


def test_every_service_the_crd_lets_run_has_a_serve_command() -> None:
    shipped = set(SERVICE_NAMES) - set(UNSHIPPED_SERVICES)
    assert shipped == set(service_names())


def test_unshipped_services_are_off_by_default() -> None:
    spec = MobilePlatformSpec.model_validate(
        {
            "app": {
                "displayName": "A",
                "ios": {"bundleIds": ["com.example.a"]},
                "redirectURIs": ["com.example.a:/cb"],
            }
        }
    )
    enabled = {name for name, s in spec.services.by_name().items() if s.enabled}
    assert enabled == set(SERVICE_NAMES) - set(UNSHIPPED_SERVICES)
