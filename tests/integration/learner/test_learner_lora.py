"""A LoRA policy rank (Ray actor, ZeRO-2, gloo) on the tiny model: only the adapters
train, the export is the merged model under the base names, and that merged model is
the very function the learner computes."""

from __future__ import annotations

import pytest
from learner_helpers import (
    TEMPERATURE,
    call,
    hf_logprobs,
    hf_model,
    kill,
    make_batch,
    max_diff,
    rank0_weights,
    spawn,
    with_training_fields,
)

from cpe.config import AlgorithmConfig, LearnerConfig, LoraConfig
from cpe.learner.policy import ADAPTER_FOLDER, PolicyWorker

pytestmark = pytest.mark.timeout(600)


def test_lora_trains_adapters_and_exports_the_merged_policy(ray_session, tiny_model, tmp_path):
    ray = ray_session
    cfg = LearnerConfig(zero_stage=2, actor_lr=1e-2, micro_batch_size=2, lora=LoraConfig(rank=4))
    actors = spawn(ray, PolicyWorker, 1, tiny_model, cfg, AlgorithmConfig())
    try:
        base = {n: p.detach() for n, p in hf_model(tiny_model).named_parameters()}
        before = rank0_weights(ray, actors)
        assert before.keys() == base.keys() and max_diff(before, base) == 0.0  # B = 0 at start

        batch = make_batch(seed=4)
        batch = with_training_fields(batch, call(ray, actors, "logprobs", batch, TEMPERATURE)[0], 4)
        (metrics,) = call(ray, actors, "train_step", batch, TEMPERATURE)
        after = rank0_weights(ray, actors)
        assert metrics["grad_norm"] > 0 and max_diff(before, after) > 1e-5
        # adapters on attention and MLP projections only: embeddings and norms stay put
        assert (
            max_diff(
                {"e": after["model.embed_tokens.weight"]}, {"e": base["model.embed_tokens.weight"]}
            )
            == 0.0
        )

        (learner_logp,) = call(ray, actors, "logprobs", batch, TEMPERATURE)
        merged = hf_model(tiny_model, after)
        assert float((hf_logprobs(merged, batch) - learner_logp).abs().max()) < 1e-5

        folder = tmp_path / "policy_hf"
        call(ray, actors, "save_hf", str(folder))
        assert (folder / "model.safetensors").exists()
        assert (folder / ADAPTER_FOLDER / "adapter_config.json").exists()
    finally:
        kill(ray, actors)
