"""Shared-prompt forward: each distinct prompt of a micro-batch runs through the model
once, and its rows' responses continue from its key/value cache.

GRPO and CPE sample n answers per prompt (and CPE trains edits under the original
prompt), so a micro-batch repeats each prompt several times. A plain forward computes
every copy; here the prompt's keys and values are computed once, indexed out to its rows
and the responses attend to them, with gradients flowing back through the shared cache.
The logits are the plain forward's (up to float rounding): same positions, same masks.
Hand-written because neither transformers nor PEFT offers a differentiable prefix share;
HF's own cache drops it under gradient checkpointing, which config validation refuses.
"""

from __future__ import annotations

from typing import Protocol

import torch

from cpe.batch import TensorBatch
from cpe.learner.tokens import logits_to_keep


class CausalLM(Protocol):
    def __call__(self, **kwargs) -> object: ...  # HF-style output with .logits


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


def shared_prefix_logits(model: CausalLM, batch: TensorBatch) -> torch.Tensor:
    """Logits ``[b, k, V]`` for the last ``k = logits_to_keep(batch)`` positions, as
    ``model(batch, logits_to_keep=k)`` gives them on every response position (other
    positions hold finite logits of the same row that no response token reads)."""
    lengths = prompt_lengths(batch)
    prompts, index = prompt_groups(batch, lengths)
    if len(prompts) == len(batch) or not batch.response_mask.any():
        return plain_logits(model, batch)  # nothing shared: one forward is cheaper
    device = batch.input_ids.device
    index = index.to(device)
    prompt_ids, prompt_mask = _left_padded(prompts, device)
    head = model(
        input_ids=prompt_ids,
        attention_mask=prompt_mask,
        position_ids=(prompt_mask.cumsum(1) - 1).clamp(min=0),
        use_cache=True,
        logits_to_keep=1,
    )
    cache = head.past_key_values
    cache.batch_select_indices(index)
    tail_ids, tail_mask, tail_pos = _tails(batch, lengths)
    tail = model(
        input_ids=tail_ids,
        attention_mask=torch.cat([prompt_mask[index], tail_mask], dim=1),
        position_ids=tail_pos,
        past_key_values=cache,
        use_cache=True,
    )
    # next[:, t] predicts the row's response token t (column lengths + t)
    following = torch.cat([head.logits[index], tail.logits[:, :-1]], dim=1)
    return _aligned(following, batch, lengths)


def plain_logits(model: CausalLM, batch: TensorBatch) -> torch.Tensor:
    return model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        use_cache=False,
        logits_to_keep=logits_to_keep(batch),
    ).logits


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
    return ids, mask, columns


def _aligned(following: torch.Tensor, batch: TensorBatch, lengths: torch.Tensor) -> torch.Tensor:
    """Move ``following`` (row-relative: t = token after the prompt) to the batch's
    columns of the last ``k`` positions, where position ``first − 1 + j`` predicts column
    ``first + j``."""
    keep = logits_to_keep(batch)
    first = batch.input_ids.shape[1] - keep + 1
    offsets = (
        first
        + torch.arange(keep, device=following.device)
        - lengths.to(following.device).unsqueeze(1)
    )
    offsets = offsets.clamp(0, following.shape[1] - 1)
    return following.gather(1, offsets.unsqueeze(-1).expand(-1, -1, following.shape[-1]))
