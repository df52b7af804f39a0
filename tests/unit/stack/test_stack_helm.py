"""Helm's version ldflags: a truthful ``helm version`` and the stack's Kubernetes minor."""

from __future__ import annotations

import pytest

from mobileplane.stack.components.helm import helm_ldflags
from mobileplane.stack.versions import pin


def _assignments(ldflags: str) -> tuple[list[str], dict[str, str]]:
    tokens = ldflags.split(" ")
    plain = [t for i, t in enumerate(tokens) if t != "-X" and (i == 0 or tokens[i - 1] != "-X")]
    pairs = [tokens[i + 1] for i, t in enumerate(tokens) if t == "-X"]
    return plain, dict(p.split("=", 1) for p in pairs)


@pytest.mark.parametrize(
    ("helm_version", "kube_version", "minor"),
    [
        pytest.param("v3.22.0", "v1.34.4", "34", id="pinned"),
        pytest.param("v3.19.1", "v1.35.10", "35", id="other-versions"),
        pytest.param("v3.22.0", "1.34.0", "34", id="kube-version-without-v"),
    ],
)
def test_helm_ldflags(helm_version: str, kube_version: str, minor: str) -> None:
    plain, assignments = _assignments(helm_ldflags(helm_version, kube_version))
    assert plain == ["-s", "-w"]
    assert assignments == {
        "helm.sh/helm/v3/internal/version.version": helm_version,
        "helm.sh/helm/v3/internal/version.gitTreeState": "clean",
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor": "1",
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor": minor,
        "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor": "1",
        "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor": minor,
    }


def test_helm_ldflags_for_the_pinned_versions_name_the_pinned_kubernetes_minor() -> None:
    kube_minor = pin("kubernetes").version.removeprefix("v").split(".")[1]
    flags = helm_ldflags(pin("helm").version, pin("kubernetes").version)
    assert f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={kube_minor} " in flags + " "
    assert f"-X helm.sh/helm/v3/internal/version.version={pin('helm').version}" in flags
