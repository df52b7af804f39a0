"""The comparison of an uploaded object with what the client declared."""

from __future__ import annotations

import hashlib

import pytest

from mobileplane.services.kit.uploads import upload_mismatches

BODY = b"\x89PNG" + b"x" * 96
SHA = hashlib.sha256(BODY).hexdigest()


@pytest.mark.parametrize(
    ("body", "stored_type", "declared", "problems"),
    [
        (BODY, "image/png", (100, "image/png", SHA), []),
        (BODY[:-1], "image/png", (100, "image/png", SHA), ["size 99 != declared 100", "SHA-256"]),
        (BODY, "image/jpeg", (100, "image/png", SHA), ["type image/jpeg != declared image/png"]),
        (BODY, None, (100, "image/png", SHA), ["type None != declared image/png"]),
        (BODY, "image/png", (100, "image/png", "0" * 64), ["SHA-256"]),
    ],
)
def test_upload_mismatches(
    body: bytes, stored_type: str | None, declared: tuple[int, str, str], problems: list[str]
) -> None:
    size, content_type, sha256 = declared
    found = upload_mismatches(
        body, stored_type, size=size, content_type=content_type, sha256=sha256
    )
    assert len(found) == len(problems)
    for got, want in zip(found, problems, strict=True):
        assert got.startswith(want)
