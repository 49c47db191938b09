"""Advantage estimators: token-level GAE with a critic, and group-relative (GRPO) scores.

``gae`` and ``grpo_advantages`` are the raw formulas; :data:`ADVANTAGE_ESTIMATORS`
maps ``algorithm.advantage`` to estimators with one signature
(:class:`AdvantageInputs` -> advantages, returns), which is what the trainer calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from cpe.algo.kl import token_level_rewards
from cpe.algo.masking import check_same_shape, masked_whiten


@torch.no_grad()
def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over ``[batch, tokens]``; no whitening.

    Masked tokens are skipped: they get 0 advantage and 0 return, their rewards and
    values are ignored, and the recursion bridges them (the next value of a valid
    token is the value at the next *valid* token; 0 after the last one).
    Returns ``(advantages, returns)`` with ``returns = advantages + values``.
    """
    check_same_shape(rewards=rewards, values=values, mask=mask)
    valid = mask.bool()
    batch, length = values.shape
    advantages = torch.zeros_like(values)
    next_value = values.new_zeros(batch)
    next_advantage = values.new_zeros(batch)
    for t in reversed(range(length)):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        here = valid[:, t]
        advantages[:, t] = torch.where(here, advantage, torch.zeros_like(advantage))
        next_value = torch.where(here, values[:, t], next_value)
        next_advantage = torch.where(here, advantage, next_advantage)
    returns = torch.where(valid, advantages + values, torch.zeros_like(values))
    return advantages, returns


@torch.no_grad()
def grpo_advantages(
    scores: torch.Tensor,
    group_ids: torch.Tensor,
    eps: float = 1e-6,
    normalize_std: bool = True,
) -> torch.Tensor:
    """Group-relative advantages ``(s − mean_g) / (std_g + eps)`` per ``[batch]`` score.

    ``std_g`` is the unbiased group std; with ``normalize_std=False`` scores are only
    centred. A singleton group gets 0 (it has no peers to compare with).
    """
    check_same_shape(scores=scores, group_ids=group_ids)
    if scores.dim() != 1:
        raise ValueError(f"scores must be 1-D [batch], got shape {tuple(scores.shape)}")
    scores = scores.to(torch.get_default_dtype()) if not scores.is_floating_point() else scores
    if torch.isnan(scores).any():
        bad = torch.nonzero(torch.isnan(scores)).flatten().tolist()
        raise ValueError(f"NaN scores at rows {bad}; drop invalid samples before grouping")
    _, inverse, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    counts = counts.to(scores.dtype)
    group_mean = scores.new_zeros(len(counts)).index_add_(0, inverse, scores) / counts
    centred = scores - group_mean[inverse]
    if normalize_std:
        squares = scores.new_zeros(len(counts)).index_add_(0, inverse, centred**2)
        group_std = (squares / (counts - 1).clamp_min(1)).sqrt()
        centred = centred / (group_std[inverse] + eps)
    has_peers = counts[inverse] > 1
    return torch.where(has_peers, centred, torch.zeros_like(centred))


@dataclass(frozen=True)
class AdvantageInputs:
    """One batch as an estimator sees it. Rows whose ``mask`` is all zero (an invalid
    GRM result) get zero advantages and returns and enter no statistic."""

    rewards: torch.Tensor  # [b] sequence rewards
    values: torch.Tensor  # [b, L] V on response tokens
    mask: torch.Tensor  # [b, L] valid response tokens
    group_ids: torch.Tensor  # [b] prompt of each row
    kl: torch.Tensor | None = None  # [b, L] per-token KL, subtracted from the reward
    kl_coef: float = 0.0
    gamma: float = 1.0
    lam: float = 1.0

    def valid_rows(self) -> torch.Tensor:
        return self.mask.sum(dim=1) > 0


Estimator = Callable[[AdvantageInputs], tuple[torch.Tensor, torch.Tensor]]


def gae_estimator(x: AdvantageInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Reward on the last response token (minus ``kl_coef * kl``), learned values,
    GAE(gamma, lambda)."""
    rows = x.valid_rows()
    adv, ret = torch.zeros_like(x.mask), torch.zeros_like(x.mask)
    if rows.any():
        kl = None if x.kl is None else x.kl[rows]
        rewards = token_level_rewards(
            x.rewards[rows], x.mask[rows], kl=kl, kl_coef=x.kl_coef if kl is not None else 0.0
        )
        adv[rows], ret[rows] = gae(rewards, x.values[rows], x.mask[rows], x.gamma, x.lam)
    return adv, ret


def grpo_estimator(x: AdvantageInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's reward normalised within its prompt group, on every response token."""
    rows = x.valid_rows()
    scores = torch.zeros(x.mask.shape[0], dtype=x.mask.dtype)
    if rows.any():
        scores[rows] = grpo_advantages(x.rewards[rows], x.group_ids[rows]).to(x.mask.dtype)
    adv = scores[:, None] * x.mask
    return adv, adv + x.values * x.mask


@dataclass(frozen=True)
class AdvantageEstimator:
    estimate: Estimator
    # False: the estimator reads no learned values, so no value model is placed, built,
    # trained or checkpointed (its values arrive as zeros).
    needs_values: bool


ADVANTAGE_ESTIMATORS: dict[str, AdvantageEstimator] = {
    "gae": AdvantageEstimator(gae_estimator, needs_values=True),
    "grpo": AdvantageEstimator(grpo_estimator, needs_values=False),
}


def estimate_advantages(
    estimator: Estimator, x: AdvantageInputs, whiten: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns); advantages whitened over all valid tokens when asked."""
    adv, ret = estimator(x)
    if whiten and x.mask.sum() >= 2:
        adv = masked_whiten(adv, x.mask)
    return adv, ret
