"""Choosing which edited samples join the batch (CPE step 6).

Edit rewards are ``[num_edits]`` floats where NaN marks an invalid judgement; invalid
edits are never selected. Ties always go to the lower edit index.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from cpe.algo.lookup import choose

# ratio·count products like 0.29·100 land a hair off the integer in floating point.
_ROUNDING_SLACK = 1e-9


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"edit ratio must be in [0, 1], got {ratio}")


def edit_budget(ratio: float, num_prompts: int, n: int, divisor: int) -> int:
    """K = ⌊ratio·B·n / d⌋·d: edits counted against originals, kept divisible by d."""
    _check_ratio(ratio)
    if divisor < 1:
        raise ValueError(f"divisor must be >= 1, got {divisor}")
    if num_prompts < 0 or n < 1:
        raise ValueError(f"need num_prompts >= 0 and n >= 1, got {num_prompts}, {n}")
    return math.floor(ratio * num_prompts * n / divisor + _ROUNDING_SLACK) * divisor


def per_group_quota(ratio: float, n: int) -> int:
    """⌈ratio·n⌉ edits kept per prompt by the ranked strategies."""
    _check_ratio(ratio)
    return math.ceil(ratio * n - _ROUNDING_SLACK)


def _ranked(indices: list[int], keys: list[float]) -> list[int]:
    """Indices by key descending, lower index first on ties."""
    return sorted(indices, key=lambda i: (-keys[i], i))


def _top_per_group(
    keys: list[float], usable: list[bool], group_ids: list[int], quota: int
) -> list[int]:
    members: dict[int, list[int]] = {}
    for i, group in enumerate(group_ids):
        if usable[i]:
            members.setdefault(group, []).append(i)
    return [i for group in members.values() for i in _ranked(group, keys)[:quota]]


def _random_subset(indices: list[int], k: int, generator: torch.Generator | None) -> list[int]:
    if len(indices) <= k:
        return indices
    picks = torch.randperm(len(indices), generator=generator)[:k].tolist()
    return [indices[p] for p in picks]


@dataclass(frozen=True)
class EditPool:
    """What a strategy sees: rewards (NaN = invalid), links, quota ⌈ρn⌉ and budget K."""

    reward_orig: torch.Tensor
    reward_edit: torch.Tensor
    pair_ids: torch.Tensor
    group_ids: torch.Tensor
    quota: int
    budget: int
    generator: torch.Generator | None

    def gain(self) -> list[float]:
        """Δ = R_edit − R_own_original; NaN if either side is invalid."""
        return (self.reward_edit - self.reward_orig[self.pair_ids]).tolist()


def select_random(pool: EditPool) -> list[int]:
    """K uniformly random valid edits (all valid ones if fewer than K)."""
    valid = torch.nonzero(~torch.isnan(pool.reward_edit)).flatten().tolist()
    return _random_subset(valid, pool.budget, pool.generator)


def select_reward_rank(pool: EditPool) -> list[int]:
    """Per prompt the top ⌈ρn⌉ edits by edit reward; a random K of the pool if too many."""
    keys = pool.reward_edit.tolist()
    usable = [not math.isnan(k) for k in keys]
    top = _top_per_group(keys, usable, pool.group_ids.tolist(), pool.quota)
    return _random_subset(sorted(top), pool.budget, pool.generator)


def _select_by_gain(pool: EditPool, strict: bool) -> list[int]:
    gain = pool.gain()
    usable = [not math.isnan(g) and (g > 0 or not strict) for g in gain]
    top = _top_per_group(gain, usable, pool.group_ids.tolist(), pool.quota)
    return _ranked(top, gain)[: pool.budget]


def select_conditional(pool: EditPool) -> list[int]:
    """As released: per prompt top ⌈ρn⌉ by Δ, then the global top K by Δ (no Δ>0 filter)."""
    return _select_by_gain(pool, strict=False)


def select_conditional_strict(pool: EditPool) -> list[int]:
    """As the paper describes: only edits with Δ>0, then as ``conditional`` (may give < K)."""
    return _select_by_gain(pool, strict=True)


def _random_priority(pool: EditPool) -> list[float]:
    return torch.rand(len(pool.reward_edit), generator=pool.generator).tolist()


@dataclass(frozen=True)
class SelectionStrategy:
    """How to pick edits, and what the pick ranks by: when the count must be rounded
    down to a multiple of the divisor, the lowest-priority picks go first."""

    select: Callable[[EditPool], list[int]]
    priority: Callable[[EditPool], list[float]]


SELECTION_STRATEGIES: dict[str, SelectionStrategy] = {
    "random": SelectionStrategy(select_random, _random_priority),
    "reward_rank": SelectionStrategy(select_reward_rank, lambda pool: pool.reward_edit.tolist()),
    "conditional": SelectionStrategy(select_conditional, EditPool.gain),
    "conditional_strict": SelectionStrategy(select_conditional_strict, EditPool.gain),
}


def trim_to_multiple(chosen: list[int], priority: list[float], divisor: int) -> list[int]:
    """Drop the lowest-priority picks (ties: the higher index) until the count divides
    by ``divisor``: shards of the batch must be equal on every learner rank."""
    excess = len(chosen) % divisor
    if not excess:
        return chosen
    dropped = set(sorted(chosen, key=lambda i: (priority[i], -i))[:excess])
    return [i for i in chosen if i not in dropped]


def _check_pool(
    reward_orig: torch.Tensor,
    reward_edit: torch.Tensor,
    pair_ids: torch.Tensor,
    group_ids: torch.Tensor,
    n: int,
) -> int:
    """Validate shapes and ids; return B, the number of prompts."""
    num_edits = reward_edit.shape[0]
    for name, t in (
        ("reward_orig", reward_orig),
        ("reward_edit", reward_edit),
        ("pair_ids", pair_ids),
        ("group_ids", group_ids),
    ):
        if t.dim() != 1:
            raise ValueError(f"{name} must be 1-D, got shape {tuple(t.shape)}")
    if pair_ids.shape[0] != num_edits or group_ids.shape[0] != num_edits:
        raise ValueError("reward_edit, pair_ids and group_ids must have the same length")
    num_originals = reward_orig.shape[0]
    if n < 1 or num_originals % n:
        raise ValueError(f"{num_originals} originals are not B prompts × n={n} rollouts")
    if num_edits and (pair_ids.min() < 0 or pair_ids.max() >= num_originals):
        raise ValueError(f"pair_ids must index reward_orig (0..{num_originals - 1})")
    return num_originals // n


def select_edits(
    strategy: str,
    reward_orig: torch.Tensor,
    reward_edit: torch.Tensor,
    pair_ids: torch.Tensor,
    group_ids: torch.Tensor,
    ratio: float,
    n: int,
    divisor: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sorted ``LongTensor`` of edit-pool indices chosen by ``strategy``; its length
    is a multiple of ``divisor``.

    K = ``edit_budget(ratio, B, n, divisor)`` with B = len(reward_orig) / n. For
    ``random`` only validity matters, so a caller may pass zeros to select before scoring.
    """
    chosen_strategy = choose(SELECTION_STRATEGIES, strategy, "selection strategy")
    num_prompts = _check_pool(reward_orig, reward_edit, pair_ids, group_ids, n)
    pool = EditPool(
        reward_orig=reward_orig.double(),
        reward_edit=reward_edit.double(),
        pair_ids=pair_ids.long(),
        group_ids=group_ids,
        quota=per_group_quota(ratio, n),
        budget=edit_budget(ratio, num_prompts, n, divisor),
        generator=generator,
    )
    chosen = chosen_strategy.select(pool)
    # Fewer valid edits than K (or the strict filter) can leave a count that does not
    # divide over the learner ranks. The priority is computed only then: the random
    # strategy's draws stay exactly those of an untrimmed selection otherwise.
    if len(chosen) % divisor:
        chosen = trim_to_multiple(chosen, chosen_strategy.priority(pool), divisor)
    return torch.tensor(sorted(chosen), dtype=torch.long)
