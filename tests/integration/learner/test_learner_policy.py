"""Two PolicyWorker ranks (Ray actors, ZeRO-2, gloo) on the tiny model."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from learner_helpers import (
    TEMPERATURE,
    call,
    hf_logprobs,
    hf_model,
    kill,
    make_batch,
    max_diff,
    relative_update_error,
    spawn,
    with_training_fields,
)

from cpe.config import AlgorithmConfig, LearnerConfig
from cpe.learner.policy import PolicyWorker

pytestmark = pytest.mark.timeout(600)

WORLD = 2
LEARNER = LearnerConfig(zero_stage=2, actor_lr=1e-3, micro_batch_size=2)
ALGO = AlgorithmConfig()


@pytest.fixture(scope="module")
def pair(ray_session, tiny_model):
    actors = spawn(ray_session, PolicyWorker, WORLD, tiny_model, LEARNER, ALGO)
    yield actors
    kill(ray_session, actors)


def export(ray, actors) -> dict:
    buckets = call(ray, actors, "export_buckets", 1)
    assert buckets[1] == []
    return {name: t for bucket in buckets[0] for name, t in bucket}


def logprobs(ray, actors, batch) -> torch.Tensor:
    return torch.cat(call(ray, actors, "logprobs", batch, TEMPERATURE))


def training_batch(ray, actors, seed: int):
    batch = make_batch(seed)
    return with_training_fields(batch, logprobs(ray, actors, batch), seed)


def test_logprobs_equal_a_plain_transformers_forward(ray_session, pair, tiny_model):
    batch = make_batch(0)
    ours = logprobs(ray_session, pair, batch)
    reference = hf_logprobs(hf_model(tiny_model, export(ray_session, pair)), batch)
    assert ours.shape == batch.input_ids.shape
    assert torch.all(ours[batch.response_mask == 0] == 0)
    assert torch.allclose(ours, reference, atol=1e-5, rtol=0)


def test_train_step_updates_both_ranks_identically(ray_session, pair, tiny_model):
    batch = training_batch(ray_session, pair, seed=1)
    before = export(ray_session, pair)
    metrics = call(ray_session, pair, "train_step", batch, TEMPERATURE)
    assert metrics[0] == metrics[1]  # reduced across ranks
    m = metrics[0]
    assert math.isfinite(m["grad_norm"]) and m["grad_norm"] > 0
    assert m["lr"] == LEARNER.actor_lr
    assert m["orig/num_rows"] == 2 and m["edit/num_rows"] == 2
    assert m["orig/ratio_mean"] == pytest.approx(1.0, abs=1e-5)  # old_logp is π itself
    after = export(ray_session, pair)
    assert max_diff(before, after) > 1e-4
    # Rank 1 scores its shard with its own replica: it must equal rank 0's weights.
    fresh = hf_logprobs(hf_model(tiny_model, after), batch)
    assert torch.allclose(logprobs(ray_session, pair, batch), fresh, atol=1e-5, rtol=0)


def test_two_micro_batches_update_like_one(ray_session, pair, tmp_path):
    batch = training_batch(ray_session, pair, seed=2)
    before = export(ray_session, pair)
    call(ray_session, pair, "save_state", str(tmp_path / "s0"))
    one = call(ray_session, pair, "train_step", batch, TEMPERATURE, micro_batch_size=2)[0]
    weights_one = export(ray_session, pair)
    call(ray_session, pair, "load_state", str(tmp_path / "s0"))
    assert max_diff(export(ray_session, pair), before) == 0
    two = call(ray_session, pair, "train_step", batch, TEMPERATURE, micro_batch_size=1)[0]
    weights_two = export(ray_session, pair)
    # grad_norm is the norm of the accumulated, rank-averaged gradient before clipping.
    assert two["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-6)
    for key in ("policy_loss", "edit/ratio_mean", "orig/clip_frac"):
        assert two[key] == pytest.approx(one[key], abs=1e-6), key
    assert relative_update_error(before, weights_one, weights_two) < 1e-4


def test_pi_old_from_the_update_itself_matches_a_separate_pass(ray_session, pair, tmp_path):
    # One optimizer step per batch: pi_old taken detached from the training forward is
    # the separately computed pi_old, so the step and the new weights are the same.
    batch = training_batch(ray_session, pair, seed=4)
    call(ray_session, pair, "save_state", str(tmp_path / "s0"))
    separate = call(ray_session, pair, "train_step", batch, TEMPERATURE)[0]
    weights_separate = export(ray_session, pair)
    call(ray_session, pair, "load_state", str(tmp_path / "s0"))
    before = export(ray_session, pair)
    inline = call(ray_session, pair, "train_step", replace(batch, old_logp=None), TEMPERATURE)[0]
    for key, value in separate.items():
        assert inline[key] == pytest.approx(value, abs=1e-6), key
    assert relative_update_error(before, weights_separate, export(ray_session, pair)) < 1e-5
    with pytest.raises(Exception, match="one optimizer step"):
        call(ray_session, pair, "train_step", replace(batch, old_logp=None), TEMPERATURE, 2)


def test_resumed_workers_take_the_same_next_step(ray_session, pair, tiny_model, tmp_path):
    batch = training_batch(ray_session, pair, seed=3)
    call(ray_session, pair, "train_step", batch, TEMPERATURE)  # moves Adam off its first step
    state = str(tmp_path / "state")
    call(ray_session, pair, "save_state", state, {"step": 7})
    expected = call(ray_session, pair, "train_step", batch, TEMPERATURE)[0]
    expected_weights = export(ray_session, pair)

    fresh = spawn(ray_session, PolicyWorker, WORLD, tiny_model, LEARNER, ALGO)
    try:
        assert call(ray_session, fresh, "load_state", state) == [{"step": 7}] * WORLD
        got = call(ray_session, fresh, "train_step", batch, TEMPERATURE)[0]
        got_weights = export(ray_session, fresh)
    finally:
        kill(ray_session, fresh)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert max_diff(got_weights, expected_weights) < 1e-6


def test_save_hf_loads_with_transformers(ray_session, pair, tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(tmp_path / "hf")
    assert call(ray_session, pair, "save_hf", path) == [path, None]
    loaded = AutoModelForCausalLM.from_pretrained(path).eval()
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    reference = hf_model(tiny_model, export(ray_session, pair))
    batch = make_batch(4)
    with torch.no_grad():
        a = loaded(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        b = reference(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert torch.equal(a, b)
    assert (
        AutoTokenizer.from_pretrained(path).get_vocab()
        == AutoTokenizer.from_pretrained(tiny_model).get_vocab()
    )
    assert (
        call(ray_session, pair, "num_params")
        == [sum(p.numel() for p in loaded.parameters())] * WORLD
    )


def test_token_budget_micro_batches_agree_across_ranks_and_train_like_one_micro_batch(
    ray_session, pair, tiny_model, tmp_path
):
    # Rank 0's rows are 10, 10, 6 and 6 tokens long, rank 1's all 6. A budget of 12 padded
    # tokens cuts rank 0's into micro-batches of 1, 1 and 2 rows and rank 1's into 2 and
    # 2, which it must cut further to run three passes too. Weighted by their tokens,
    # the micro-batches step like one micro-batch of all four rows per rank.
    batch = make_batch(5, rows=8, edits=(1, 3, 5, 7))
    for rows in (slice(2, 4), slice(4, 8)):
        batch.attention_mask[rows, 6:] = 0
        batch.response_mask[rows, 6:] = 0
        batch.input_ids[rows, 6:] = 0
    batch = with_training_fields(batch, logprobs(ray_session, pair, batch), seed=5)
    call(ray_session, pair, "save_state", str(tmp_path / "s0"))
    budget = spawn(
        ray_session, PolicyWorker, WORLD, tiny_model, replace(LEARNER, micro_batch_tokens=12), ALGO
    )
    try:
        call(ray_session, budget, "load_state", str(tmp_path / "s0"))
        before = export(ray_session, budget)
        assert torch.allclose(logprobs(ray_session, budget, batch), batch.old_logp, atol=1e-6)
        by_tokens = call(ray_session, budget, "train_step", batch, TEMPERATURE)[0]
        whole = call(ray_session, pair, "train_step", batch, TEMPERATURE, micro_batch_size=4)[0]
        assert by_tokens["grad_norm"] == pytest.approx(whole["grad_norm"], rel=1e-5)
        weights = export(ray_session, budget), export(ray_session, pair)
        assert relative_update_error(before, *weights) < 1e-4
    finally:
        kill(ray_session, budget)
