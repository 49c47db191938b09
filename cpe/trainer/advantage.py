"""Advantages for a padded batch (spec step 7), by estimator name."""

from __future__ import annotations

import torch

from cpe.algo import gae, grpo_advantages, masked_whiten, token_level_rewards
from cpe.config import AlgorithmConfig


def gae_advantages(
    t: dict[str, torch.Tensor], cfg: AlgorithmConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reward on the last response token, learned values, GAE(gamma, lambda)."""
    mask = t["response_mask"]
    rows = mask.sum(dim=1) > 0  # rows with an invalid GRM result carry no tokens
    adv = torch.zeros_like(mask)
    ret = torch.zeros_like(mask)
    if rows.any():
        kl = t.get("kl") if cfg.kl.in_reward else None
        rewards = token_level_rewards(
            t["rewards"][rows],
            mask[rows],
            kl=None if kl is None else kl[rows],
            kl_coef=cfg.kl.coef if kl is not None else 0.0,
        )
        adv[rows], ret[rows] = gae(rewards, t["old_values"][rows], mask[rows], cfg.gamma, cfg.lam)
    return adv, ret


def group_advantages(
    t: dict[str, torch.Tensor], cfg: AlgorithmConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO-style: each row's reward normalised within its prompt group, on every token."""
    mask = t["response_mask"]
    rows = mask.sum(dim=1) > 0
    scores = torch.zeros(mask.shape[0])
    if rows.any():
        scores[rows] = grpo_advantages(t["rewards"][rows], t["group_ids"][rows])
    adv = scores[:, None] * mask
    return adv, adv + t["old_values"] * mask


ESTIMATORS = {"gae": gae_advantages, "grpo": group_advantages}


def compute_advantages(t: dict[str, torch.Tensor], cfg: AlgorithmConfig) -> None:
    """Adds ``advantages`` and ``returns`` to ``t``, whitened over all valid tokens."""
    adv, ret = ESTIMATORS[cfg.advantage](t, cfg)
    mask = t["response_mask"]
    if cfg.whiten_advantages and mask.sum() >= 2:
        adv = masked_whiten(adv, mask)
    t["advantages"], t["returns"] = adv, ret
