"""Two PolicyWorker ranks under ZeRO-3: export and save_hf gather the full weights."""

from __future__ import annotations

import math

import pytest
import torch
from learner_helpers import (
    TEMPERATURE,
    call,
    hf_logprobs,
    hf_model,
    kill,
    make_batch,
    spawn,
    with_training_fields,
)

from cpe.config import AlgorithmConfig, LearnerConfig
from cpe.learner.policy import PolicyWorker

pytestmark = pytest.mark.timeout(600)

WORLD = 2
LEARNER = LearnerConfig(zero_stage=3, actor_lr=1e-3, micro_batch_size=2)
# The tiny model's tensors are all below ZeRO-3's default persistence threshold
# (1e5 elements), which would leave them unpartitioned.
PARTITION_ALL = {"zero_optimization": {"stage3_param_persistence_threshold": 0}}


@pytest.fixture(scope="module")
def zero3(ray_session, tiny_model):
    actors = spawn(
        ray_session,
        PolicyWorker,
        WORLD,
        tiny_model,
        LEARNER,
        AlgorithmConfig(),
        ds_overrides=PARTITION_ALL,
    )
    yield actors
    kill(ray_session, actors)


def export(ray, actors) -> dict:
    buckets = call(ray, actors, "export_buckets", 1)
    assert buckets[1] == []
    return {name: t for bucket in buckets[0] for name, t in bucket}


def test_parameters_are_partitioned_and_export_is_full(ray_session, zero3, tiny_model):
    full = call(ray_session, zero3, "num_params")[0]
    assert max(call(ray_session, zero3, "local_param_numel")) < full / 2
    exported = export(ray_session, zero3)
    reference = {
        k: v for k, v in hf_model(tiny_model).state_dict().items() if k != "lm_head.weight"
    }
    assert {k: tuple(v.shape) for k, v in exported.items()} == {
        k: tuple(v.shape) for k, v in reference.items()
    }
    assert all(torch.equal(exported[k], reference[k]) for k in reference)
    assert sum(t.numel() for t in exported.values()) == full


def test_train_step_and_save_hf_under_zero3(ray_session, zero3, tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM

    batch = make_batch(20)
    batch = with_training_fields(
        batch, torch.cat(call(ray_session, zero3, "logprobs", batch, TEMPERATURE)), 20
    )
    metrics = call(ray_session, zero3, "train_step", batch, TEMPERATURE)
    assert metrics[0] == metrics[1] and math.isfinite(metrics[0]["grad_norm"])
    trained = export(ray_session, zero3)
    ours = torch.cat(call(ray_session, zero3, "logprobs", batch, TEMPERATURE))
    assert torch.allclose(
        ours, hf_logprobs(hf_model(tiny_model, trained), batch), atol=1e-5, rtol=0
    )

    path = str(tmp_path / "hf")
    call(ray_session, zero3, "save_hf", path)
    loaded = AutoModelForCausalLM.from_pretrained(path).eval()
    assert torch.allclose(hf_logprobs(loaded, batch), ours, atol=1e-5, rtol=0)
