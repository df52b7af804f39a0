"""Which users see a rollout at a given percentage — the same users Unleash's SDKs pick.

Unleash's gradual rollout puts a user in the rollout when
``murmur3_32(f"{group_id}:{sticky_id}", seed=0) % 100 + 1 <= percentage``. Computing it the
same way here lets the controller (and tests) know exactly who is exposed, and guarantees
monotonicity: raising the percentage only ever adds users, so nobody flips back and forth
between versions as the rollout advances.

MurmurHash3 (x86, 32-bit) is implemented here in pure Python so the controller does not depend
on a C extension; a test checks it against the ``mmh3`` the Unleash client uses.
"""

from __future__ import annotations

_C1 = 0xCC9E2D51
_C2 = 0x1B873593
_MASK = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit, unsigned."""
    h = seed & _MASK
    length = len(data)
    blocks = length // 4
    for i in range(blocks):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * _C1) & _MASK
        k = _rotl(k, 15)
        k = (k * _C2) & _MASK
        h ^= k
        h = _rotl(h, 13)
        h = (h * 5 + 0xE6546B64) & _MASK
    tail = data[4 * blocks :]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if tail:
        k ^= tail[0]
        k = (k * _C1) & _MASK
        k = _rotl(k, 15)
        k = (k * _C2) & _MASK
        h ^= k
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h


def normalized_hash(group_id: str, sticky_id: str, modulus: int = 100, seed: int = 0) -> int:
    """Unleash's bucket of ``sticky_id`` in ``group_id``: 1..modulus."""
    return murmur3_32(f"{group_id}:{sticky_id}".encode(), seed) % modulus + 1


def is_enabled(percentage: int, group_id: str, sticky_id: str) -> bool:
    """Whether a user is in a gradual rollout of ``percentage`` (0–100)."""
    return percentage > 0 and normalized_hash(group_id, sticky_id) <= percentage
