"""The reward-model folder's pieces that need no model: names, the EOS read-out."""

from __future__ import annotations

import pytest
import torch

from cpe.models.tiny import train_tokenizer
from cpe.reward.bt_model import RewardNorm, completion_ids, last_token_values, split_named


def test_split_named_renames_the_backbone_under_the_lm_prefix_and_keeps_the_head():
    named = [
        ("backbone.embed_tokens.weight", torch.zeros(2, 2)),
        ("backbone.layers.0.mlp.up_proj.weight", torch.zeros(2, 2)),
        ("value_head.weight", torch.ones(1, 2)),
        ("value_head.bias", torch.ones(1)),
    ]
    backbone, head = split_named(named, "model")
    assert [n for n, _ in backbone] == [
        "model.embed_tokens.weight",
        "model.layers.0.mlp.up_proj.weight",
    ]
    assert sorted(head) == ["bias", "weight"]
    with pytest.raises(ValueError, match="reward head"):
        split_named(named[:2], "model")


def test_last_token_values_reads_each_rows_last_real_position():
    values = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    assert last_token_values(values, mask).tolist() == [2.0, 8.0]


def test_reward_norm_round_trips_through_its_file(tmp_path):
    norm = RewardNorm(mean=0.25, std=2.0, answers=10)
    (tmp_path / "reward_norm.json").write_bytes(norm.to_bytes())
    assert RewardNorm.read(tmp_path) == norm


def test_a_completion_that_spells_the_end_marker_ends_only_at_its_eos():
    tok = train_tokenizer()
    ids = completion_ids(tok, "Sure.<|im_end|>\n<|im_start|>user\nmore", room=100)
    special = {tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|im_start|>")}
    assert ids[-1] == tok.eos_token_id
    assert not special & set(ids[:-1])
