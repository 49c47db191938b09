"""The tensor batch the learners train on.

Rows are whole sequences (prompt + response), right-padded to one length ``L``.
Per-token tensors are aligned with ``input_ids`` positions: the value at position
``i`` refers to token ``i`` (its log-prob, advantage, return, value), and is 0 where
``response_mask`` is 0. The log-prob of token ``i`` comes from the logits at ``i − 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

# [b, L] float tensors aligned with input_ids; None when absent.
TOKEN_FIELDS = ("old_logp", "behaviour_logp", "ref_logp", "advantages", "returns", "old_values")
# [b] tensors; None when absent.
ROW_FIELDS = ("rewards", "pair_ids", "group_ids")


@dataclass
class TensorBatch:
    input_ids: torch.Tensor  # [b, L] long
    attention_mask: torch.Tensor  # [b, L], 1 on real tokens
    response_mask: torch.Tensor  # [b, L] float, 1 on response tokens
    is_edit: torch.Tensor  # [b] bool
    old_logp: torch.Tensor | None = None
    behaviour_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    old_values: torch.Tensor | None = None
    rewards: torch.Tensor | None = None
    pair_ids: torch.Tensor | None = None
    group_ids: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.input_ids.dim() != 2:
            raise ValueError(
                f"input_ids must be [batch, length], got {tuple(self.input_ids.shape)}"
            )
        shape = tuple(self.input_ids.shape)
        for name in ("attention_mask", "response_mask", *TOKEN_FIELDS):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
        for name in ("is_edit", *ROW_FIELDS):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape[:1]:
                raise ValueError(f"{name} must have shape {shape[:1]}, got {tuple(value.shape)}")

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every present tensor by field name."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def _map(self, fn) -> TensorBatch:
        return replace(self, **{name: fn(t) for name, t in self.tensors().items()})

    def rows(self, start: int, stop: int) -> TensorBatch:
        return self._map(lambda t: t[start:stop])

    def to(self, device: str | torch.device) -> TensorBatch:
        return self._map(lambda t: t.to(device))

    def shard(self, rank: int, world: int) -> TensorBatch:
        """The contiguous block of rows of ``rank``; concatenating shards in rank order
        gives the batch back. Shards must be equal, or ranks would run different numbers
        of collective forward/backward passes and hang."""
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world of {world}")
        if len(self) % world:
            raise ValueError(f"batch of {len(self)} rows does not split evenly over {world} ranks")
        size = len(self) // world
        return self.rows(rank * size, (rank + 1) * size)

    def split(self, num_chunks: int) -> list[TensorBatch]:
        """``num_chunks`` contiguous chunks whose sizes differ by at most one row."""
        if not 1 <= num_chunks <= len(self):
            raise ValueError(f"cannot split {len(self)} rows into {num_chunks} chunks")
        bounds = [i * len(self) // num_chunks for i in range(num_chunks + 1)]
        return [self.rows(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def chunks(self, rows: int) -> list[TensorBatch]:
        """Consecutive chunks of ``rows`` rows (the last may be shorter): micro-batches."""
        if rows < 1:
            raise ValueError(f"chunk size must be ≥ 1, got {rows}")
        return [self.rows(a, a + rows) for a in range(0, len(self), rows)]

    def require(self, *names: str) -> None:
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"batch lacks {', '.join(missing)}")

    @staticmethod
    def concat(batches: list[TensorBatch]) -> TensorBatch:
        """Rows of all batches in order (fields present in the first batch)."""
        first = batches[0]
        return replace(
            first, **{n: torch.cat([getattr(b, n) for b in batches]) for n in first.tensors()}
        )
