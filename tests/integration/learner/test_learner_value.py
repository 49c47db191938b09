"""Two ValueWorker ranks (Ray actors, ZeRO-1, gloo) on the tiny model."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from learner_helpers import call, kill, make_batch, relative_update_error, spawn

from cpe.config import AlgorithmConfig, LearnerConfig
from cpe.learner.value import ValueWorker

pytestmark = pytest.mark.timeout(600)

WORLD = 2
LEARNER = LearnerConfig(zero_stage=1, critic_lr=1e-3, micro_batch_size=2)
ALGO = AlgorithmConfig(value_clip=0.5)


@pytest.fixture(scope="module")
def critics(ray_session, tiny_model):
    actors = spawn(ray_session, ValueWorker, WORLD, tiny_model, LEARNER, ALGO)
    yield actors
    kill(ray_session, actors)


def values(ray, actors, batch) -> torch.Tensor:
    return torch.cat(call(ray, actors, "values", batch))


def export(ray, actors) -> dict:
    buckets = call(ray, actors, "export_buckets")
    return {name: t for bucket in buckets[0] for name, t in bucket}


def regression_batch(ray, actors):
    batch = make_batch(10)
    returns = torch.tensor([0.4, -0.3, 0.1, -0.2]).unsqueeze(1) * batch.response_mask
    return replace(batch, returns=returns, old_values=values(ray, actors, batch))


def fit_loss(v: torch.Tensor, batch) -> float:
    mask = batch.response_mask.bool()
    return float(0.5 * ((v - batch.returns)[mask] ** 2).mean())


def test_zero_head_starts_at_zero_and_values_align_with_tokens(ray_session, critics):
    batch = make_batch(10)
    v = values(ray_session, critics, batch)
    assert v.shape == batch.input_ids.shape and torch.all(v == 0)
    weights = export(ray_session, critics)
    assert weights["value_head.weight"].shape == (1, 128)
    assert any(name.startswith("backbone.layers.") for name in weights)
    assert (
        call(ray_session, critics, "num_params")
        == [sum(t.numel() for t in weights.values())] * WORLD
    )


def test_training_reduces_the_value_loss_on_a_fixed_batch(ray_session, critics):
    batch = regression_batch(ray_session, critics)
    start = fit_loss(batch.old_values, batch)
    history = [call(ray_session, critics, "train_step", batch)[0] for _ in range(6)]
    assert all(math.isfinite(m["grad_norm"]) for m in history)
    assert history[-1]["value_loss"] < history[0]["value_loss"]
    end = fit_loss(values(ray_session, critics, batch), batch)
    assert end < 0.5 * start
    assert history[0]["value_loss"] == pytest.approx(start, rel=1e-5)


def test_zero1_accumulation_matches_one_micro_batch(ray_session, critics, tmp_path):
    batch = regression_batch(ray_session, critics)
    before = export(ray_session, critics)
    call(ray_session, critics, "save_state", str(tmp_path / "s"))
    one = call(ray_session, critics, "train_step", batch, micro_batch_size=2)[0]
    weights_one = export(ray_session, critics)
    call(ray_session, critics, "load_state", str(tmp_path / "s"))
    two = call(ray_session, critics, "train_step", batch, micro_batch_size=1)[0]
    assert two["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-6)
    assert two["value_loss"] == pytest.approx(one["value_loss"], abs=1e-6)
    assert relative_update_error(before, weights_one, export(ray_session, critics)) < 1e-4
