"""Which environment variables a service reads, and which it was given but would ignore.

Settings classes take ``extra="ignore"``: a pod's environment holds the whole platform
ConfigMap (every service's keys) plus what Kubernetes and the image add. The price is that a
typo (``AUTH_ACCESS_TOKEN_TTL`` for ``AUTH_ACCESS_TOKEN_TTL_SECONDS``) silently keeps the
default. This module names such keys: a variable with a service's own prefix that none of its
settings classes reads. ``mobileplane serve`` refuses them in a pod, where the environment is
exactly what the operator (or a chart's values) rendered, and warns elsewhere, where a shell
may hold unrelated variables that merely share the prefix. Pure: environments come in as
mappings.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from pydantic_settings import BaseSettings


def env_names(cls: type[BaseSettings]) -> frozenset[str]:
    """The variables ``cls`` reads (upper case): its prefix and each field's name or alias."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    names = set()
    for name, info in cls.model_fields.items():
        alias = info.validation_alias if isinstance(info.validation_alias, str) else None
        names.add((alias or f"{prefix}{name}").upper())
    return frozenset(names)


def read_by(classes: Iterable[type[BaseSettings]]) -> frozenset[str]:
    """Every variable some class of ``classes`` reads."""
    return frozenset(name for cls in classes for name in env_names(cls))


def unknown_settings(
    environ: Mapping[str, str], prefix: str, classes: Iterable[type[BaseSettings]]
) -> list[str]:
    """Variables starting with ``prefix`` (e.g. ``AUTH_``) that no class reads, each with the
    closest name that is read, when one is close: ``AUTH_X (did you mean AUTH_Y?)``."""
    known = read_by(classes)
    prefix = prefix.upper()
    problems = []
    for key in sorted(environ):
        upper = key.upper()
        if not upper.startswith(prefix) or upper in known:
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.75)
        problems.append(f"{key} (did you mean {close[0]}?)" if close else key)
    return problems
