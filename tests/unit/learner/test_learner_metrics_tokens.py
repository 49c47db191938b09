"""Metric averaging and the log-prob / value position alignment."""

import pytest
import torch

from cpe.learner.metrics import MetricAccumulator, group_of
from cpe.learner.tokens import shift_values, token_entropy, token_logprobs


def test_group_of():
    assert group_of("orig/ratio_mean") == "orig"
    assert group_of("edit/capped_frac") == "edit"
    assert group_of("policy_loss") == "all" and group_of("original") == "all"


def test_means_are_token_weighted_and_counts_summed_per_pass():
    acc = MetricAccumulator()
    acc.add(
        {"loss": 1.0, "edit/ratio_mean": 0.0, "edit/num_tokens": 0.0},
        {"all": 3.0, "orig": 3.0, "edit": 0.0},
    )
    acc.add(
        {"loss": 2.0, "edit/ratio_mean": 1.5, "edit/num_tokens": 4.0},
        {"all": 1.0, "orig": 0.0, "edit": 4.0},
    )
    acc.add({"grad_norm": 2.0})
    acc.add({"grad_norm": 4.0})
    out = acc.result(passes=2)
    assert out["loss"] == pytest.approx((3 * 1 + 2) / 4)
    assert out["edit/ratio_mean"] == 1.5  # the micro-batch without edits does not dilute it
    assert out["edit/num_tokens"] == 2.0
    assert out["grad_norm"] == 3.0


def test_all_reduce_sees_sums_and_weights():
    acc = MetricAccumulator()
    acc.add({"loss": 1.0}, 2.0)
    out = acc.result(all_reduce=lambda t: t.mul_(2))  # as if two identical ranks
    assert out == {"loss": 1.0}


def test_token_logprobs_read_logits_one_position_back():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7)
    ids = torch.randint(0, 7, (2, 4))
    out = token_logprobs(logits, ids, temperature=0.5)
    assert out.shape == (2, 4) and torch.all(out[:, 0] == 0)
    for b in range(2):
        for i in range(1, 4):
            expected = torch.log_softmax(logits[b, i - 1] / 0.5, -1)[ids[b, i]]
            assert out[b, i].item() == pytest.approx(expected.item(), abs=1e-6)
    with pytest.raises(ValueError):
        token_logprobs(logits, ids, 0.0)


def test_entropy_and_values_use_the_same_shift():
    uniform = torch.log(torch.tensor(4.0)).item()
    entropy = token_entropy(torch.zeros(1, 3, 4), torch.zeros(1, 3, dtype=torch.long), 1.0)
    assert entropy[0].tolist() == pytest.approx([0.0, uniform, uniform])
    assert shift_values(torch.tensor([[1.0, 2.0, 3.0]])).tolist() == [[0.0, 1.0, 2.0]]


def test_logits_of_the_last_positions_give_the_same_logprobs_there():
    # logits_to_keep=k: the model returns positions L-k..L-1; tokens L-k+1.. get the
    # very values the full logits give, earlier tokens 0.
    torch.manual_seed(1)
    logits = torch.randn(2, 6, 5)
    ids = torch.randint(0, 5, (2, 6))
    full = token_logprobs(logits, ids, temperature=0.7)
    part = token_logprobs(logits[:, 3:], ids, temperature=0.7)  # k = 3: tokens 4, 5
    assert part.shape == (2, 6)
    assert torch.equal(part[:, 4:], full[:, 4:]) and torch.all(part[:, :4] == 0)
    ent_full = token_entropy(logits, ids, 0.7)
    ent_part = token_entropy(logits[:, 3:], ids, 0.7)
    assert torch.equal(ent_part[:, 4:], ent_full[:, 4:]) and torch.all(ent_part[:, :4] == 0)
    with pytest.raises(ValueError, match="cover 7 positions of a 6-token batch"):
        token_logprobs(torch.randn(2, 7, 5), ids, 1.0)
