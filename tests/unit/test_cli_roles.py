"""The roles the image's one entrypoint runs: each becomes ``kopf run`` of its module."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from mobileplane import cli


class Execed(Exception):
    pass


@pytest.mark.parametrize(
    ("args", "kopf_args"),
    [
        pytest.param(
            ["operator"],
            ["--all-namespaces", "-m", "mobileplane.operator.handlers"],
            id="operator",
        ),
        pytest.param(
            ["operator", "--liveness=http://0.0.0.0:8080/healthz", "--namespace", "a"],
            [
                "--namespace",
                "a",
                "--liveness=http://0.0.0.0:8080/healthz",
                "-m",
                "mobileplane.operator.handlers",
            ],
            id="operator-as-the-chart-runs-it",
        ),
        pytest.param(
            ["release", "controller", "--liveness=http://0.0.0.0:8080/healthz"],
            [
                "--all-namespaces",
                "--liveness=http://0.0.0.0:8080/healthz",
                "-m",
                "mobileplane.rollout.controller",
            ],
            id="release-controller",
        ),
    ],
)
def test_role_becomes_kopf_run(
    monkeypatch: pytest.MonkeyPatch, args: list[str], kopf_args: list[str]
) -> None:
    seen: list[list[str]] = []

    def execv(path: str, argv: list[str]) -> None:
        seen.append(argv)
        raise Execed

    monkeypatch.setattr("os.execv", execv)
    result = CliRunner().invoke(cli.main, args)
    assert isinstance(result.exception, Execed)
    assert seen == [[sys.executable, "-m", "kopf", "run", *kopf_args]]
