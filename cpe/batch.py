"""The tensor batch of one step: built by the driver from the maker's samples, filled
with log-probs, values and advantages, trained on by the learners and read back for
metrics. The one form a step's tensors take; every field is named here once.

Rows are whole sequences (prompt + response), right-padded to one length ``L``.
Per-token tensors are aligned with ``input_ids`` positions: the value at position
``i`` refers to token ``i`` (its log-prob, advantage, return, value), and is 0 where
``response_mask`` is 0. The log-prob of token ``i`` comes from the logits at ``i − 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

# [b, L] float tensors aligned with input_ids; None when absent.
TOKEN_FIELDS = (
    "old_logp",
    "behaviour_logp",
    "ref_logp",
    "kl",
    "advantages",
    "returns",
    "old_values",
)
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
    kl: torch.Tensor | None = None  # per-token KL(pi_old || ref) on response tokens
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

    @classmethod
    def from_sequences(
        cls, prompts: list[list[int]], responses: list[list[int]], pad_id: int
    ) -> TensorBatch:
        """Right-padded ``prompt + response`` rows; ``response_mask`` marks the response."""
        length = max(len(p) + len(r) for p, r in zip(prompts, responses, strict=True))
        rows = len(prompts)
        input_ids = torch.full((rows, length), pad_id, dtype=torch.long)
        attention = torch.zeros((rows, length), dtype=torch.long)
        response = torch.zeros((rows, length), dtype=torch.float32)
        for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
            input_ids[i, : len(p) + len(r)] = torch.tensor(p + r, dtype=torch.long)
            attention[i, : len(p) + len(r)] = 1
            response[i, len(p) : len(p) + len(r)] = 1.0
        return cls(input_ids, attention, response, torch.zeros(rows, dtype=torch.bool))

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every present tensor by field name."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def _map(self, fn) -> TensorBatch:
        return replace(self, **{name: fn(t) for name, t in self.tensors().items()})

    def select(self, index: torch.Tensor) -> TensorBatch:
        """The rows at ``index`` (a permutation, a subset or repeats), in that order."""
        return self._map(lambda t: t[index])

    def padded_to_multiple(self, ranks: int) -> TensorBatch:
        """Forward-only passes may see any row count: repeat the last row up to a
        multiple of ``ranks`` (callers drop the extra rows from the results)."""
        extra = (-len(self)) % ranks
        if not extra:
            return self
        last = torch.full((extra,), len(self) - 1, dtype=torch.long)
        return self.select(torch.cat([torch.arange(len(self)), last]))

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

    def trimmed(self) -> TensorBatch:
        """Without the trailing columns that are padding in every row. Rows are
        right-padded and the model is causal, so no real token ever reads those
        columns: every kept position computes the same, for less work."""
        real = self.attention_mask.any(dim=0).nonzero()
        length = int(real.max()) + 1 if len(real) else 1
        if length == self.input_ids.shape[1]:
            return self
        return self._map(lambda t: t[:, :length] if t.dim() == 2 else t)

    def row_lengths(self) -> list[int]:
        """Each row's length up to its last real token (0 for an all-padding row)."""
        mask = self.attention_mask.bool()
        positions = torch.arange(1, mask.shape[1] + 1, device=mask.device)
        return (mask * positions).amax(dim=1).tolist()

    def first_response_column(self) -> int:
        """The first column holding a response token in any row (0 when none does)."""
        cols = self.response_mask.any(dim=0).nonzero()
        return int(cols.min()) if len(cols) else 0

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


@dataclass
class ForwardPasses:
    """What the learners compute on a step's batch before the update."""

    # [b, L] pi_old on the batch (original prompts); None when the update takes pi_old
    # from its own forward (one optimizer step per batch: see cpe.trainer.driver)
    old_logp: torch.Tensor | None
    old_values: torch.Tensor  # [b, L] V
    ref_logp: torch.Tensor | None = None  # [b, L] reference policy, when one is configured
    edit_logp: torch.Tensor | None = None  # [e, L'] the edits under their edit prompts (mu)
