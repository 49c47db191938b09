import pytest
import torch

from cpe.batch import TensorBatch
from cpe.config import AlgorithmConfig
from cpe.trainer.advantage import with_advantages


def _batch():
    # row 0: 2 response tokens, reward 1; row 1: invalid GRM result (mask all zero);
    # row 2: 3 response tokens, reward -1. Values V on response tokens.
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], dtype=torch.float32)
    values = torch.tensor([[0, 0.5, 0.25, 0], [0, 9, 9, 9], [0, 0.0, -0.5, 0.5]])
    return TensorBatch(
        input_ids=torch.zeros(3, 4, dtype=torch.long),
        attention_mask=torch.ones(3, 4, dtype=torch.long),
        response_mask=mask,
        is_edit=torch.zeros(3, dtype=torch.bool),
        old_values=values * mask,
        rewards=torch.tensor([1.0, 0.0, -1.0]),
        group_ids=torch.tensor([0, 0, 1]),
    )


def test_gae_with_gamma_lambda_one_is_reward_minus_value_then_whitened():
    t = with_advantages(_batch(), AlgorithmConfig(whiten_advantages=False))
    # A_t = R - V_t: row 0 -> 1-0.5, 1-0.25; row 2 -> -1-0, -1+0.5, -1-0.5
    assert t.advantages.tolist() == [[0, 0.5, 0.75, 0], [0, 0, 0, 0], [0, -1.0, -0.5, -1.5]]
    # returns = A + V = R on every valid token
    assert t.returns.tolist() == [[0, 1, 1, 0], [0, 0, 0, 0], [0, -1, -1, -1]]

    w = with_advantages(_batch(), AlgorithmConfig(whiten_advantages=True))
    valid = [0.5, 0.75, -1.0, -0.5, -1.5]  # mean -0.35, Bessel var 0.9625
    mean = sum(valid) / 5
    std = (sum((v - mean) ** 2 for v in valid) / 4 + 1e-8) ** 0.5
    expected = [(v - mean) / std for v in valid]
    got = w.advantages[w.response_mask > 0].tolist()
    assert got == pytest.approx(expected, abs=1e-6)
    assert w.advantages[1].abs().sum() == 0  # the invalid row gets nothing


def test_grpo_estimator_normalises_within_prompt_groups():
    t = _batch()
    t.group_ids = torch.tensor([0, 0, 0])
    t.rewards = torch.tensor([1.0, 5.0, -1.0])  # row 1 is invalid: not in its group's stats
    t = with_advantages(t, AlgorithmConfig(advantage="grpo", whiten_advantages=False))
    # group {1, -1}: mean 0, unbiased std sqrt(2) -> +-0.7071 on every valid token
    assert t.advantages[0, 1].item() == pytest.approx(1 / 2**0.5, abs=1e-5)
    assert t.advantages[2, 3].item() == pytest.approx(-1 / 2**0.5, abs=1e-5)
    assert t.advantages[1].abs().sum() == 0
