"""KL estimators (k1/k2/k3 and their clamps) and token-level reward assembly."""

import math

import pytest
import torch

from cpe.algo import kl_penalty, last_valid_index, token_level_rewards


def t(rows, grad=False):
    return torch.tensor(rows, dtype=torch.float64, requires_grad=grad)


LOGP = t([[-1.0, -2.0]])
REF = t([[-1.5, -1.0]])  # logp - ref = [0.5, -1.0]


def test_k1_is_the_log_ratio():
    torch.testing.assert_close(kl_penalty(LOGP, REF, "k1"), t([[0.5, -1.0]]))


def test_k2_is_half_the_squared_log_ratio():
    # 0.5 * 0.5^2 = 0.125 ; 0.5 * (-1)^2 = 0.5
    torch.testing.assert_close(kl_penalty(LOGP, REF, "k2"), t([[0.125, 0.5]]))


def test_k3_values():
    # d = ref - logp = [-0.5, 1.0]
    # exp(-0.5) - (-0.5) - 1 = 0.6065307 + 0.5 - 1 = 0.1065307
    # exp(1) - 1 - 1 = 0.7182818
    expected = t([[math.exp(-0.5) - 0.5, math.exp(1.0) - 2.0]])
    torch.testing.assert_close(kl_penalty(LOGP, REF, "k3"), expected)


def test_k3_clamps_the_log_ratio_and_the_result():
    logp = t([[0.0, 0.0, 0.0, 0.0]], grad=True)
    ref = t([[2.0, 30.0, -30.0, 1000.0]])
    k3 = kl_penalty(logp, ref, "k3")
    # d=2:   exp(2) - 2 - 1 = 4.3890561 (no clamp)
    # d=30:  clamped to 20 -> exp(20) - 21 = 4.85e8 -> clamped to 10
    # d=-30: clamped to -20 -> exp(-20) + 20 - 1 = 19.0000000 -> clamped to 10
    # d=1000 would overflow exp without the ±20 clamp; it gives 10 with a finite gradient
    torch.testing.assert_close(k3, t([[math.exp(2) - 3, 10.0, 10.0, 10.0]]))
    k3.sum().backward()
    assert torch.isfinite(logp.grad).all()
    assert logp.grad[0, 1:].eq(0).all()


def test_k3_is_never_negative():
    torch.manual_seed(0)
    a, b = torch.randn(64, 8) * 5, torch.randn(64, 8) * 5
    assert kl_penalty(a, b, "k3").ge(0).all()


def test_unknown_kl_kind_lists_the_valid_ones():
    with pytest.raises(ValueError, match="k1, k2, k3"):
        kl_penalty(LOGP, REF, "k4")


def test_token_level_rewards_sit_on_the_last_valid_token():
    mask = torch.tensor(
        [
            [1, 1, 1, 0],
            [1, 0, 1, 0],  # interior zero: last valid token is 2
            [0, 1, 0, 0],
        ]
    )  # left padding: last valid token is 1
    scores = t([1.5, -2.0, 0.7])
    rewards = token_level_rewards(scores, mask)
    expected = t([[0.0, 0.0, 1.5, 0.0], [0.0, 0.0, -2.0, 0.0], [0.0, 0.7, 0.0, 0.0]])
    torch.testing.assert_close(rewards, expected)
    torch.testing.assert_close(token_level_rewards(scores, mask.bool()), expected)
    assert last_valid_index(mask).tolist() == [2, 2, 1]


def test_token_level_rewards_with_kl_in_reward():
    mask = torch.tensor([[1, 1, 0], [1, 0, 1]])
    kl = t([[0.1, 0.2, 9.0], [0.4, 9.0, -0.2]])  # 9.0 on padding: ignored
    rewards = token_level_rewards(t([1.0, 2.0]), mask, kl=kl, kl_coef=0.5)
    # valid tokens get -0.5*kl; last valid token also gets the score
    # row0: [-0.05, 1 - 0.1, 0] ; row1: [-0.2, 0, 2 + 0.1]
    torch.testing.assert_close(rewards, t([[-0.05, 0.9, 0.0], [-0.2, 0.0, 2.1]]))


def test_token_level_rewards_rejects_empty_rows_and_nan_scores():
    with pytest.raises(ValueError, match=r"no valid tokens: \[1\]"):
        token_level_rewards(t([1.0, 2.0]), torch.tensor([[1, 0], [0, 0]]))
    with pytest.raises(ValueError, match=r"NaN scores at rows \[0\]"):
        token_level_rewards(t([math.nan, 2.0]), torch.ones(2, 2))
