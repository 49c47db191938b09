"""GAE, GRPO advantages and masked reductions, checked against hand-worked numbers."""

import math

import pytest
import torch

from cpe.algo import gae, grpo_advantages, masked_mean, masked_whiten


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_gae_bridges_masked_tokens_inside_and_after_a_sequence():
    gamma, lam = 0.9, 0.8  # gamma * lam = 0.72
    rewards = t(
        [
            [0.0, 0.0, 5.0, 1.0],  # the 5.0 sits on a masked token: ignored
            [0.0, 0.0, 2.0, 0.0],
        ]
    )
    values = t(
        [
            [0.5, 0.2, 9.0, 0.4],  # 9.0 is on the masked token: ignored
            [1.0, 0.5, 0.25, 7.0],
        ]
    )
    mask = t([[1, 1, 0, 1], [1, 1, 1, 0]])
    adv, ret = gae(rewards=rewards, values=values, mask=mask, gamma=gamma, lam=lam)
    # Row 0 (token 2 skipped, so token 1's next value is V3 = 0.4):
    #   t3: delta = 1.0 + 0.9*0 - 0.4 = 0.6                 A3 = 0.6
    #   t1: delta = 0 + 0.9*0.4 - 0.2 = 0.16                A1 = 0.16 + 0.72*0.6 = 0.592
    #   t0: delta = 0 + 0.9*0.2 - 0.5 = -0.32               A0 = -0.32 + 0.72*0.592 = 0.10624
    # Row 1 (token 3 is padding):
    #   t2: delta = 2.0 - 0.25 = 1.75                       A2 = 1.75
    #   t1: delta = 0.9*0.25 - 0.5 = -0.275                 A1 = -0.275 + 0.72*1.75 = 0.985
    #   t0: delta = 0.9*0.5 - 1.0 = -0.55                   A0 = -0.55 + 0.72*0.985 = 0.1592
    expected_adv = t([[0.10624, 0.592, 0.0, 0.6], [0.1592, 0.985, 1.75, 0.0]])
    # returns = A + V on valid tokens, 0 on masked ones
    expected_ret = t([[0.60624, 0.792, 0.0, 1.0], [1.1592, 1.485, 2.0, 0.0]])
    torch.testing.assert_close(adv, expected_adv)
    torch.testing.assert_close(ret, expected_ret)


def test_gae_with_gamma_lambda_one_is_reward_minus_value():
    rewards = t([[0.0, 0.0, 0.0, 3.0]])
    values = t([[1.0, 2.0, 0.5, -1.0]])
    mask = t([[1, 0, 1, 1]])
    adv, ret = gae(rewards=rewards, values=values, mask=mask, gamma=1.0, lam=1.0)
    # A_t = R - V_t = 3 - [1, (masked), 0.5, -1] ; G_t = A_t + V_t = 3
    torch.testing.assert_close(adv, t([[2.0, 0.0, 2.5, 4.0]]))
    torch.testing.assert_close(ret, t([[3.0, 0.0, 3.0, 3.0]]))


def test_gae_interior_mask_equals_gae_on_the_compacted_sequence():
    torch.manual_seed(0)
    rewards, values = torch.randn(1, 6, dtype=torch.float64), torch.randn(1, 6, dtype=torch.float64)
    mask = torch.tensor([[True, False, True, True, False, True]])
    adv, _ = gae(rewards=rewards, values=values, mask=mask, gamma=0.95, lam=0.9)
    keep = mask[0]
    compact, _ = gae(
        rewards=rewards[:, keep], values=values[:, keep], mask=torch.ones(1, 4), gamma=0.95, lam=0.9
    )
    torch.testing.assert_close(adv[:, keep], compact)
    assert adv[0, ~keep].eq(0).all()


def test_gae_is_detached_from_the_critic_graph():
    values = torch.ones(1, 3, requires_grad=True)
    adv, ret = gae(
        rewards=torch.ones(1, 3), values=values, mask=torch.ones(1, 3), gamma=1.0, lam=1.0
    )
    assert not adv.requires_grad and not ret.requires_grad


def test_masked_mean_ignores_padding_even_if_nan():
    x = t([[1.0, 2.0, math.nan], [3.0, 100.0, 5.0]])
    mask = torch.tensor([[True, True, False], [True, False, True]])
    assert masked_mean(x, mask).item() == pytest.approx((1 + 2 + 3 + 5) / 4)
    torch.testing.assert_close(masked_mean(x, mask, dim=1), t([1.5, 4.0]))


def test_masked_whiten_uses_bessel_variance_over_valid_tokens():
    x = t([[1.0, 2.0, 1000.0], [3.0, 4.0, -1000.0]])
    mask = t([[1, 1, 0], [1, 1, 0]])
    out = masked_whiten(x, mask)
    # mean 2.5; var = (2.25 + 0.25 + 0.25 + 2.25) / (4 - 1) = 5/3; std = 1.2909944
    # (1 - 2.5)/1.2909944 = -1.1618950 ; (2 - 2.5)/1.2909944 = -0.3872983
    expected = t([[-1.1618950, -0.3872983, 0.0], [0.3872983, 1.1618950, 0.0]])
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_masked_whiten_without_shift_adds_the_mean_back():
    x = t([[1.0, 2.0, 3.0, 4.0]])
    out = masked_whiten(x, torch.ones(1, 4), shift_mean=False)
    # whitened + 2.5 -> [1.3381050, 2.1127017, 2.8872983, 3.6618950]
    torch.testing.assert_close(
        out, t([[1.3381050, 2.1127017, 2.8872983, 3.6618950]]), atol=1e-6, rtol=0
    )


def test_masked_whiten_of_a_constant_is_zero():
    out = masked_whiten(torch.full((2, 3), 7.0), torch.ones(2, 3))
    torch.testing.assert_close(out, torch.zeros(2, 3))


@pytest.mark.parametrize("mask", [[[1, 0, 0]], [[0, 0, 0]]])
def test_masked_whiten_needs_two_valid_tokens(mask):
    with pytest.raises(ValueError, match="at least 2 valid tokens"):
        masked_whiten(t([[1.0, 2.0, 3.0]]), t(mask))


def test_grpo_advantages_with_a_singleton_group():
    scores = t([1.0, 3.0, 5.0, 2.0, 4.0, 6.0])
    groups = torch.tensor([0, 0, 1, 2, 2, 2])
    adv = grpo_advantages(scores=scores, group_ids=groups)
    # group 0: mean 2, unbiased std sqrt(((-1)^2 + 1^2)/1) = sqrt(2) -> -+1/(sqrt2 + 1e-6)
    # group 1: singleton -> 0
    # group 2: mean 4, std sqrt((4 + 0 + 4)/2) = 2 -> [-1, 0, 1] / (2 + 1e-6) * 2
    r2 = math.sqrt(2) + 1e-6
    expected = t([-1 / r2, 1 / r2, 0.0, -2 / 2.000001, 0.0, 2 / 2.000001])
    torch.testing.assert_close(adv, expected)


def test_grpo_advantages_centred_only_and_arbitrary_group_ids():
    scores = t([1.0, 3.0, 5.0, 2.0, 2.0])
    groups = torch.tensor([7, 7, 3, 9, 9])
    adv = grpo_advantages(scores=scores, group_ids=groups, normalize_std=False)
    # group 7: mean 2 -> [-1, 1]; group 3 singleton -> 0; group 9: equal scores -> 0
    torch.testing.assert_close(adv, t([-1.0, 1.0, 0.0, 0.0, 0.0]))
    normalised = grpo_advantages(scores=scores, group_ids=groups)
    assert torch.isfinite(normalised).all() and normalised[3:].eq(0).all()


def test_grpo_advantages_rejects_invalid_scores():
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        grpo_advantages(scores=t([1.0, math.nan]), group_ids=torch.tensor([0, 0]))
