"""The MobileRelease CRD, generated from :mod:`.spec` with the operator's converter.

``python -m mobileplane.rollout.crdgen`` prints it; ``crds/mobilerelease.yaml`` is its
output, and a unit test fails when the two differ.
"""

from __future__ import annotations

import sys
from typing import Any

from mobileplane.operator.crdgen import custom_resource_definition, render_crd
from mobileplane.rollout.spec import MobileReleaseSpec, MobileReleaseStatus

KIND = "MobileRelease"
PLURAL = "mobilereleases"
DESCRIPTION = (
    "A MobileRelease is a staged rollout of one app version on one platform: the release "
    "controller walks its steps, gating on crash-free rates, and moves its feature flags and "
    "store rollout with it."
)


def crd() -> dict[str, Any]:
    return custom_resource_definition(
        kind=KIND,
        plural=PLURAL,
        short_name="mrel",
        description=DESCRIPTION,
        spec_model=MobileReleaseSpec,
        status_model=MobileReleaseStatus,
        printer_columns=[
            {"name": "Version", "type": "string", "jsonPath": ".spec.app.version"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Step", "type": "integer", "jsonPath": ".status.currentStep"},
            {"name": "Weight", "type": "integer", "jsonPath": ".status.weight"},
            {
                "name": "Crash-free",
                "type": "number",
                "jsonPath": ".status.lastAnalysis.crashFreeSessions",
            },
        ],
    )


def render() -> str:
    return render_crd(crd(), "rollout/spec.py", "mobileplane.rollout.crdgen")


if __name__ == "__main__":
    sys.stdout.write(render())
