"""Decoding request bodies in every Content-Encoding the SDKs send, with a bound."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable

import brotli
import pytest
import zstandard

from mobileplane.services.kit.encoding import (
    DecodedTooLarge,
    EncodingError,
    UnsupportedEncoding,
    decode,
)

DOC = b'{"event_id": "abc"}\n' * 50 + os.urandom(64)


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


PACKERS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip": ("gzip", gzip.compress),
    "x-gzip": ("x-gzip", gzip.compress),
    "deflate (zlib)": ("deflate", zlib.compress),
    "deflate (raw)": ("deflate", raw_deflate),
    "br": ("br", brotli.compress),
    "zstd": ("zstd", zstd),
    "zstd, two frames": ("zstd", lambda d: zstd(d[:100]) + zstd(d[100:])),
    "gzip then br": ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
    "identity": ("identity", lambda d: d),
    "none": ("", lambda d: d),
    "upper case": ("GZIP", gzip.compress),
}


@pytest.mark.parametrize("case", list(PACKERS))
def test_every_coding_round_trips(case: str) -> None:
    header, pack = PACKERS[case]
    assert decode(pack(DOC), header, limit=len(DOC)) == DOC


@pytest.mark.parametrize("case", [c for c in PACKERS if PACKERS[c][0] not in ("", "identity")])
def test_a_bomb_stops_at_the_limit(case: str) -> None:
    header, pack = PACKERS[case]
    bomb = pack(b"\0" * 20_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(DecodedTooLarge) as caught:
        decode(bomb, header, limit=1000)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    "case", ["gzip", "deflate (zlib)", "br", "zstd", "zstd, two frames", "gzip then br"]
)
def test_a_truncated_body_is_an_error_not_a_short_document(case: str) -> None:
    header, pack = PACKERS[case]
    whole = pack(DOC)
    with pytest.raises(EncodingError) as caught:
        decode(whole[: len(whole) - 3], header, limit=10_000)
    assert caught.value.status == 400


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_garbage_is_a_400_naming_the_coding(coding: str) -> None:
    with pytest.raises(EncodingError, match=coding) as caught:
        decode(b"\x13\x37 not compressed at all", coding, limit=10_000)
    assert caught.value.status == 400


def test_an_unknown_coding_is_a_415_listing_the_known_ones() -> None:
    with pytest.raises(UnsupportedEncoding, match="gzip, deflate, br, zstd") as caught:
        decode(b"x", "compress", limit=10)
    assert caught.value.status == 415


def test_an_identity_body_over_the_limit_is_too_large() -> None:
    with pytest.raises(DecodedTooLarge):
        decode(b"x" * 11, None, limit=10)
