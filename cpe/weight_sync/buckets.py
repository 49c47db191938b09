"""Grouping parameters into transfer buckets: the one byte-packer of weight sync."""

from __future__ import annotations

import torch


def plan_buckets(
    named: list[tuple[str, torch.nn.Parameter]], bucket_bytes: int
) -> list[list[tuple[str, torch.nn.Parameter]]]:
    """Consecutive groups of parameters of at most ``bucket_bytes`` (full, not partitioned
    sizes); a parameter larger than that gets a bucket of its own."""
    buckets: list[list[tuple[str, torch.nn.Parameter]]] = [[]]
    size = 0
    for name, param in named:
        nbytes = getattr(param, "ds_numel", param.numel()) * param.element_size()
        if buckets[-1] and size + nbytes > bucket_bytes:
            buckets.append([])
            size = 0
        buckets[-1].append((name, param))
        size += nbytes
    return [b for b in buckets if b]
