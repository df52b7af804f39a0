"""The pinned versions in versions.toml and the cache keys derived from them."""

from __future__ import annotations

import re

import pytest

from mobileplane.stack.versions import Pin, pin, pins

COMPONENTS = [
    "postgres",
    "redis",
    "versitygw",
    "seaweedfs",
    "unleash",
    "etcd",
    "kubernetes",
    "kwok",
    "helm",
    "coredns",
    "cri-tools",
]


def test_every_component_is_pinned() -> None:
    assert sorted(pins()) == sorted(COMPONENTS)


@pytest.mark.parametrize("component", [pytest.param(c, id=c) for c in COMPONENTS])
def test_every_pin_has_a_version_and_a_source(component: str) -> None:
    p = pin(component)
    assert p.component == component
    assert p.version.strip() == p.version != ""
    assert p.source.strip() == p.source != ""
    assert p is pins()[component]


@pytest.mark.parametrize(
    ("component", "version", "source"),
    [
        pytest.param("kubernetes", r"v1\.34\.\d+", "k8s.io/kubernetes", id="kubernetes-1.34"),
        pytest.param("etcd", r"v3\.6\.\d+", "go.etcd.io/etcd/server/v3", id="etcd-3.6"),
        pytest.param("unleash", r"7\.5\.1", "unleash-server", id="unleash-7.5.1"),
        pytest.param("postgres", r"15", "postgresql-15", id="postgres-15"),
        pytest.param("redis", r"7", "redis-server", id="redis-7"),
        pytest.param("kwok", r"v\d+\.\d+\.\d+", "sigs.k8s.io/kwok", id="kwok"),
        pytest.param("helm", r"v3\.\d+\.\d+", "helm.sh/helm/v3", id="helm-3"),
        pytest.param(
            "versitygw", r"v\d+\.\d+\.\d+", "github.com/versity/versitygw", id="versitygw"
        ),
        pytest.param(
            "seaweedfs",
            r"v0\.0\.0-\d{14}-[0-9a-f]{12}",
            "github.com/seaweedfs/seaweedfs",
            id="seaweedfs-pseudo-version",
        ),
    ],
)
def test_pinned_versions(component: str, version: str, source: str) -> None:
    p = pin(component)
    assert re.fullmatch(version, p.version), p.version
    assert p.source == source


@pytest.mark.parametrize(
    ("p", "key"),
    [
        pytest.param(
            Pin("kubernetes", "v1.34.4", "k8s.io/kubernetes"), "kubernetes-v1.34.4", id="go"
        ),
        pytest.param(Pin("unleash", "7.5.1", "unleash-server"), "unleash-7.5.1", id="npm"),
        pytest.param(Pin("postgres", "15", "postgresql-15"), "postgres-15", id="debian"),
    ],
)
def test_cache_key(p: Pin, key: str) -> None:
    assert p.cache_key == key


@pytest.mark.parametrize("component", [pytest.param(c, id=c) for c in COMPONENTS])
def test_cache_key_of_every_pin_is_a_safe_directory_name(component: str) -> None:
    p = pin(component)
    assert p.cache_key == f"{component}-{p.version}"
    assert re.fullmatch(r"[a-z0-9]+-[A-Za-z0-9._+-]+", p.cache_key), p.cache_key


def test_unknown_component_has_no_pin() -> None:
    with pytest.raises(KeyError):
        pin("mysql")
