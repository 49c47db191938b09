"""The held-out split every tool shares: decided by a hash of an item's id."""

from __future__ import annotations

import hashlib


def is_held_out(item_id: str, share: float) -> bool:
    """True for the items of the held-out split: a hash of the id, the same on every run
    and machine whatever the file's order (Python's hash() is salted per process)."""
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
