"""Reading k8s.io/kubernetes' go.mod: which staging modules to replace, and its godebug line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobileplane.stack.gobuild import godebug_line, staging_modules

KUBERNETES_GOMOD = (
    Path(__file__).parent / "data" / "kubernetes-v1.34.4-go.mod.excerpt"
).read_text()

#: Every staging module k8s.io/kubernetes v1.34.4 requires at v0.0.0.
STAGING_V1_34 = [
    "k8s.io/api",
    "k8s.io/apiextensions-apiserver",
    "k8s.io/apimachinery",
    "k8s.io/apiserver",
    "k8s.io/cli-runtime",
    "k8s.io/client-go",
    "k8s.io/cloud-provider",
    "k8s.io/cluster-bootstrap",
    "k8s.io/code-generator",
    "k8s.io/component-base",
    "k8s.io/component-helpers",
    "k8s.io/controller-manager",
    "k8s.io/cri-api",
    "k8s.io/cri-client",
    "k8s.io/csi-translation-lib",
    "k8s.io/dynamic-resource-allocation",
    "k8s.io/endpointslice",
    "k8s.io/externaljwt",
    "k8s.io/kms",
    "k8s.io/kube-aggregator",
    "k8s.io/kube-controller-manager",
    "k8s.io/kube-proxy",
    "k8s.io/kube-scheduler",
    "k8s.io/kubectl",
    "k8s.io/kubelet",
    "k8s.io/metrics",
    "k8s.io/mount-utils",
    "k8s.io/pod-security-admission",
    "k8s.io/sample-apiserver",
]


@pytest.mark.parametrize(
    ("gomod", "expected"),
    [
        pytest.param(KUBERNETES_GOMOD, STAGING_V1_34, id="kubernetes-v1.34.4"),
        pytest.param("", [], id="empty"),
        pytest.param("module example.com/m\n\ngo 1.24.0\n", [], id="no-requires"),
        pytest.param(
            "require (\n\tk8s.io/utils v0.0.0-20250604170112-4c0f3b243397\n"
            "\tk8s.io/kube-openapi v0.0.0-20250710124328-f3f2b991d03b\n)\n",
            [],
            id="pseudo-versions-are-not-staging",
        ),
        pytest.param(
            "require (\n\tk8s.io/klog/v2 v2.130.1\n\tk8s.io/system-validators v1.10.2\n)\n",
            [],
            id="published-versions-are-not-staging",
        ),
        pytest.param(
            "require (\n\tsigs.k8s.io/yaml v0.0.0\n\texample.com/k8s.io/api v0.0.0\n)\n",
            [],
            id="other-hosts-at-v0.0.0-are-not-staging",
        ),
        pytest.param(
            "replace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n)\n",
            [],
            id="replace-lines-are-not-requires",
        ),
        pytest.param(
            "require (\n\tk8s.io/kubelet v0.0.0\n\tk8s.io/api v0.0.0\n)\n"
            "require (\n\tk8s.io/api v0.0.0\n)\n",
            ["k8s.io/api", "k8s.io/kubelet"],
            id="sorted-and-deduplicated",
        ),
    ],
)
def test_staging_modules(gomod: str, expected: list[str]) -> None:
    assert staging_modules(gomod) == expected


def test_staging_modules_leave_the_real_pseudo_versions_alone() -> None:
    found = staging_modules(KUBERNETES_GOMOD)
    for module in ("k8s.io/utils", "k8s.io/kube-openapi", "k8s.io/klog/v2", "k8s.io/gengo/v2"):
        assert module in KUBERNETES_GOMOD
        assert module not in found


@pytest.mark.parametrize(
    ("gomod", "expected"),
    [
        pytest.param(KUBERNETES_GOMOD, "godebug default=go1.24", id="kubernetes-v1.34.4"),
        pytest.param("module m\n\ngo 1.24.0\n", None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param(
            "module m\n\ngodebug default=go1.21\n", "godebug default=go1.21", id="last-line"
        ),
        pytest.param(
            "module m\n// godebug default=go1.20\n", None, id="commented-out-is-not-a-directive"
        ),
    ],
)
def test_godebug_line(gomod: str, expected: str | None) -> None:
    assert godebug_line(gomod) == expected
