"""Bradley-Terry math against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from cpe.algo import bt_loss, normalise_rewards, pairwise_accuracy, reward_stats


def test_bt_loss_is_mean_negative_log_sigmoid_of_margins():
    # margins 2, 0, -1: -log s(2) = 0.126928, -log s(0) = 0.693147, -log s(-1) = 1.313262
    chosen = torch.tensor([3.0, 1.0, 0.0])
    rejected = torch.tensor([1.0, 1.0, 1.0])
    loss, metrics = bt_loss(chosen, rejected)
    expected = (0.126928 + 0.693147 + 1.313262) / 3
    assert float(loss) == pytest.approx(expected, abs=1e-5)
    assert metrics["accuracy"] == pytest.approx(1 / 3)  # the tie counts as wrong
    assert metrics["margin"] == pytest.approx(1 / 3)


def test_bt_loss_gradient_pushes_chosen_up_and_rejected_down():
    chosen = torch.tensor([0.0], requires_grad=True)
    rejected = torch.tensor([0.0], requires_grad=True)
    loss, _ = bt_loss(chosen, rejected)
    loss.backward()
    # d/dc -log s(c - r) = -(1 - s(0)) = -0.5; d/dr = +0.5
    assert float(chosen.grad) == pytest.approx(-0.5)
    assert float(rejected.grad) == pytest.approx(0.5)


def test_pairwise_accuracy_counts_strict_wins():
    assert (
        pairwise_accuracy(torch.tensor([2.0, 1.0, 0.5, 0.0]), torch.tensor([1, 1, 1, -1.0])) == 0.5
    )
    with pytest.raises(ValueError):
        pairwise_accuracy(torch.tensor([]), torch.tensor([]))


def test_reward_stats_are_mean_and_population_std():
    mean, std = reward_stats(torch.tensor([1.0, 3.0, 5.0, 7.0]))
    assert mean == 4.0
    assert std == pytest.approx(math.sqrt(5.0))  # (9 + 1 + 1 + 9) / 4


def test_normalise_rewards_centres_and_scales_and_survives_zero_std():
    out = normalise_rewards(torch.tensor([1.0, 7.0]), mean=4.0, std=3.0)
    assert out.tolist() == [-1.0, 1.0]
    assert normalise_rewards(torch.tensor([2.0]), mean=2.5, std=0.0).tolist() == [-0.5]
