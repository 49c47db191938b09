"""The Bradley-Terry reward model's math: the pairwise loss, accuracy and the reward
normalisation its scores are served with."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bt_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean of ``-log sigmoid(r_chosen - r_rejected)`` over pairs, with the share of pairs
    ranked right (a tie counts as wrong) and the mean margin."""
    margin = chosen.float() - rejected.float()
    loss = -F.logsigmoid(margin).mean()
    metrics = {
        "bt_loss": float(loss.detach()),
        "accuracy": float((margin > 0).float().mean()),
        "margin": float(margin.detach().mean()),
    }
    return loss, metrics


def pairwise_accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    """Share of pairs whose chosen reward is strictly above the rejected one."""
    if chosen.numel() == 0:
        raise ValueError("pairwise_accuracy needs at least one pair")
    return float((chosen.float() > rejected.float()).float().mean())


def reward_stats(rewards: torch.Tensor) -> tuple[float, float]:
    """(mean, population std) of raw rewards: what the served rewards are centred and
    scaled by. cpe takes them over the reward model's training answers when it is saved
    (OpenRLHF keeps such a mean and std in its reward models too), so a PPO run sees
    rewards of mean 0 and std 1 on answers like those, whatever scale the head learnt."""
    values = rewards.float().flatten()
    if values.numel() == 0:
        raise ValueError("reward_stats needs at least one reward")
    return float(values.mean()), float(values.std(correction=0))


def normalise_rewards(
    rewards: torch.Tensor, mean: float, std: float, eps: float = 1e-8
) -> torch.Tensor:
    """``(r - mean) / std``; a std of 0 (one distinct reward) only centres."""
    scale = std if std > eps else 1.0
    return (rewards.float() - mean) / scale
