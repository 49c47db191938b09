"""One PolicyWorker rank without ZeRO (stage 0, what one rank per pool needs: nothing
to partition) takes the same step as ZeRO-2, and resumes exactly."""

from __future__ import annotations

import pytest
from learner_helpers import (
    TEMPERATURE,
    call,
    kill,
    make_batch,
    max_diff,
    rank0_weights,
    spawn,
    with_training_fields,
)

from cpe.config import AlgorithmConfig, LearnerConfig
from cpe.learner.policy import PolicyWorker

pytestmark = pytest.mark.timeout(600)

ALGO = AlgorithmConfig()


def learner(stage: int) -> LearnerConfig:
    return LearnerConfig(zero_stage=stage, actor_lr=1e-3, micro_batch_size=2)


def test_stage0_steps_like_zero2_and_resumes_exactly(ray_session, tiny_model, tmp_path):
    ray = ray_session
    plain = spawn(ray, PolicyWorker, 1, tiny_model, learner(0), ALGO)
    zero2 = spawn(ray, PolicyWorker, 1, tiny_model, learner(2), ALGO)
    try:
        batch = make_batch(seed=5)
        batch = with_training_fields(batch, call(ray, plain, "logprobs", batch, TEMPERATURE)[0], 5)
        before = rank0_weights(ray, plain)
        (m0,) = call(ray, plain, "train_step", batch, TEMPERATURE)
        (m2,) = call(ray, zero2, "train_step", batch, TEMPERATURE)
        after = rank0_weights(ray, plain)
        assert max_diff(before, after) > 1e-4 and m0["grad_norm"] > 0
        assert m0["grad_norm"] == pytest.approx(m2["grad_norm"], rel=1e-4)
        assert max_diff(after, rank0_weights(ray, zero2)) < 1e-6

        state = str(tmp_path / "state")
        call(ray, plain, "save_state", state, {"step": 1})
        expected = call(ray, plain, "train_step", batch, TEMPERATURE)[0]
        expected_weights = rank0_weights(ray, plain)
    finally:
        kill(ray, plain + zero2)
    fresh = spawn(ray, PolicyWorker, 1, tiny_model, learner(0), ALGO)
    try:
        assert call(ray, fresh, "load_state", state) == [{"step": 1}]
        got = call(ray, fresh, "train_step", batch, TEMPERATURE)[0]
        got_weights = rank0_weights(ray, fresh)
    finally:
        kill(ray, fresh)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert max_diff(got_weights, expected_weights) < 1e-6
