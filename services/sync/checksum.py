"""Checksums that let a client prove its replica of a bucket equals the server's.

A bucket's checksum is the sum, modulo 2**32, of one 32-bit hash per live row, where a row's
hash covers its table, its id and the id of the operation that last wrote it. Sums can be kept
incrementally on both sides — add a row's hash when it appears, swap the old for the new when
it changes, subtract it when it goes — and do not depend on the order rows were applied in.
After applying a complete checkpoint a client compares its sum with the server's; a mismatch
means its replica has drifted (a missed or duplicated operation, a restored backup, a bug) and
it must resync the bucket rather than build on a wrong state.

Hashing operation ids rather than values keeps the checksum the same for clients on older
schema versions, who see fewer columns of the same rows.

A row's hash is the first four bytes (big-endian) of SHA-256 over the UTF-8 bytes of
``<table>\\n<row id>\\n<op id in decimal>``; docs/sync-protocol.md gives test vectors.
"""

from __future__ import annotations

import hashlib

MODULUS = 2**32


def row_hash(table: str, row_id: str, op_id: int) -> int:
    digest = hashlib.sha256(f"{table}\n{row_id}\n{op_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def updated(checksum: int, table: str, row_id: str, old_op: int | None, new_op: int | None) -> int:
    """The bucket checksum after a row last written by ``old_op`` is written by ``new_op``
    (``None``: the row was absent / is removed)."""
    if old_op is not None:
        checksum -= row_hash(table, row_id, old_op)
    if new_op is not None:
        checksum += row_hash(table, row_id, new_op)
    return checksum % MODULUS
