"""Token-weighted averaging of per-micro-batch metrics, within a rank and across ranks."""

from __future__ import annotations

from collections.abc import Callable

import torch

COUNT_SUFFIXES = ("num_tokens", "num_rows")


def group_of(key: str) -> str:
    """Which token population a metric averages over: ``orig/…``, ``edit/…`` or all."""
    head = key.split("/", 1)[0]
    return head if head in ("orig", "edit") and "/" in key else "all"


class MetricAccumulator:
    """Sums of ``value × weight`` and of weights per key.

    Means are weighted by the valid tokens they were averaged over, so the result is the
    mean over all tokens however they were cut into micro-batches and ranks. Counts
    (``…num_tokens``, ``…num_rows``) are summed and reported per pass over the data.
    """

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.weights: dict[str, float] = {}

    def add(self, metrics: dict[str, float], tokens: dict[str, float] | float = 1.0) -> None:
        """``tokens``: one weight for every key, or a weight per group (all/orig/edit)."""
        for key, value in metrics.items():
            if key.endswith(COUNT_SUFFIXES):
                weight, value_weight = 0.0, 1.0
            else:
                weight = tokens if isinstance(tokens, float | int) else tokens[group_of(key)]
                value_weight = weight
            self.sums[key] = self.sums.get(key, 0.0) + float(value) * value_weight
            self.weights[key] = self.weights.get(key, 0.0) + float(weight)

    def result(
        self,
        passes: int = 1,
        all_reduce: Callable[[torch.Tensor], None] | None = None,
    ) -> dict[str, float]:
        """Averages (counts divided by ``passes``); ``all_reduce`` sums in place across ranks."""
        keys = sorted(self.sums)
        packed = torch.tensor(
            [[self.sums[k] for k in keys], [self.weights[k] for k in keys]], dtype=torch.float64
        )
        if all_reduce is not None:
            all_reduce(packed)
        out = {}
        for key, total, weight in zip(keys, packed[0].tolist(), packed[1].tolist(), strict=True):
            if key.endswith(COUNT_SUFFIXES):
                out[key] = total / passes
            else:
                out[key] = total / weight if weight > 0 else 0.0
        return out
