"""Shared-prompt forward: each distinct prompt of a micro-batch runs through the model
once, and its rows' responses continue from its key/value cache.

GRPO and CPE sample n answers per prompt (and CPE trains edits under the original
prompt), so a micro-batch repeats each prompt several times. A plain forward computes
every copy; here the prompt's keys and values are computed once, indexed out to its rows
and the responses attend to them, with gradients flowing back through the shared cache.
The outputs (the policy's logits, the value model's values) are the plain forward's up
to float rounding: same positions, same masks.
Hand-written because neither transformers nor PEFT offers a differentiable prefix share;
HF's own cache drops it under gradient checkpointing, which config validation refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import DynamicCache

from cpe.batch import TensorBatch
from cpe.learner.tokens import logits_to_keep


class PrefixModel(Protocol):
    """An HF-style model called with keyword tensors (``input_ids``, ``attention_mask``,
    ``position_ids``, ``past_key_values``, ``use_cache``)."""

    def __call__(self, **kwargs) -> object: ...


@dataclass(frozen=True)
class Output:
    """What a model gives per position and how to ask it for the last positions only."""

    read: Callable[[object], torch.Tensor]  # model output -> [b, T, ...] per position
    keeps_last: bool  # the model takes ``logits_to_keep`` (else its output is sliced)

    def last(self, model: PrefixModel, keep: int, **inputs) -> torch.Tensor:
        if self.keeps_last:
            return self.read(model(**inputs, logits_to_keep=keep))
        return self.read(model(**inputs))[:, -keep:]


LOGITS = Output(read=lambda out: out.logits, keeps_last=True)  # a causal LM
VALUES = Output(read=lambda out: out.values, keeps_last=False)  # cpe.learner.value


def prompt_lengths(batch: TensorBatch) -> torch.Tensor:
    """Tokens before each row's response, ``[b]`` (the row's length when it has none)."""
    has_response = batch.response_mask.bool().any(dim=1)
    first = batch.response_mask.bool().int().argmax(dim=1)
    return torch.where(has_response, first, batch.attention_mask.sum(dim=1).long())


def prompt_groups(
    batch: TensorBatch, lengths: torch.Tensor
) -> tuple[list[list[int]], torch.Tensor]:
    """The distinct prompts (token lists, first-seen order) and each row's index into
    them, ``[b]``."""
    seen: dict[tuple[int, ...], int] = {}
    index = []
    for row, length in zip(batch.input_ids.tolist(), lengths.tolist(), strict=True):
        index.append(seen.setdefault(tuple(row[:length]), len(seen)))
    return [list(p) for p in seen], torch.tensor(index, dtype=torch.long)


def plain_forward(model: PrefixModel, batch: TensorBatch, output: Output = LOGITS) -> torch.Tensor:
    """``output`` at the last ``k = logits_to_keep(batch)`` positions, ``[b, k, ...]``:
    from the position before the first response token on."""
    return output.last(
        model,
        logits_to_keep(batch),
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        use_cache=False,
    )


def shared_prefix_forward(
    model: PrefixModel, batch: TensorBatch, output: Output = LOGITS
) -> torch.Tensor:
    """:func:`plain_forward`'s result with each distinct prompt run once: equal on every
    position that reads a response token (other positions hold finite outputs of the
    same row, which no response token reads)."""
    lengths = prompt_lengths(batch)
    prompts, index = prompt_groups(batch, lengths)
    if len(prompts) == len(batch) or not batch.response_mask.any() or not max(map(len, prompts)):
        return plain_forward(model, batch, output)  # nothing shared: one forward is cheaper
    index = index.to(batch.input_ids.device)
    prompt_ids, prompt_mask = _left_padded(prompts, batch.input_ids.device)
    cache = DynamicCache()
    head = output.last(
        model,
        1,
        input_ids=prompt_ids,
        attention_mask=prompt_mask,
        position_ids=(prompt_mask.cumsum(1) - 1).clamp(min=0),
        past_key_values=cache,
        use_cache=True,
    )
    cache.batch_select_indices(index)
    tail_ids, tail_mask, tail_pos = _tails(batch, lengths)
    tail = output.read(
        model(
            input_ids=tail_ids,
            attention_mask=torch.cat([prompt_mask[index], tail_mask], dim=1),
            position_ids=tail_pos,
            past_key_values=cache,
            use_cache=True,
        )
    )
    # following[:, t] is the output at the row's column lengths + t - 1
    following = torch.cat([head[index], tail[:, :-1]], dim=1)
    return _aligned(following, batch, lengths)


def _left_padded(prompts: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts ending in the same column, so that the last column is every prompt's last
    token."""
    width = max(len(p) for p in prompts)
    ids = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for j, prompt in enumerate(prompts):
        ids[j, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long, device=device)
        mask[j, width - len(prompt) :] = 1
    return ids, mask


def _tails(batch: TensorBatch, lengths: torch.Tensor):
    """Each row's columns from its prompt's end on (ids, mask, positions), ``[b, T]``,
    padded with masked zeros past the batch's width."""
    width = batch.input_ids.shape[1]
    lengths = lengths.to(batch.input_ids.device)
    span = int(width - lengths.min())
    columns = lengths.unsqueeze(1) + torch.arange(span, device=lengths.device)
    inside = columns < width
    picked = columns.clamp(max=width - 1)
    ids = torch.where(inside, batch.input_ids.gather(1, picked), 0)
    mask = torch.where(inside, batch.attention_mask.gather(1, picked), 0)
    return ids, mask, picked  # positions past the width are masked: any in-range one does


def _aligned(following: torch.Tensor, batch: TensorBatch, lengths: torch.Tensor) -> torch.Tensor:
    """Move ``following`` (row-relative, ``[b, T]`` or ``[b, T, V]``) to the batch's last
    ``k`` positions: position ``j`` there is column ``first − 1 + j``."""
    keep = logits_to_keep(batch)
    first = batch.input_ids.shape[1] - keep + 1
    offsets = (
        first
        + torch.arange(keep, device=following.device)
        - lengths.to(following.device).unsqueeze(1)
    )
    offsets = offsets.clamp(0, following.shape[1] - 1)
    if following.dim() == 2:
        return following.gather(1, offsets)
    return following.gather(1, offsets.unsqueeze(-1).expand(-1, -1, following.shape[-1]))
