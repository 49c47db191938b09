"""Advantages and returns for a step's batch (spec step 7), by ``algorithm.advantage``."""

from __future__ import annotations

from dataclasses import replace

from cpe.algo import ADVANTAGE_ESTIMATORS, AdvantageInputs, estimate_advantages
from cpe.batch import TensorBatch
from cpe.config import AlgorithmConfig


def with_advantages(batch: TensorBatch, cfg: AlgorithmConfig) -> TensorBatch:
    """``batch`` with ``advantages`` and ``returns``, whitened over all valid tokens."""
    batch.require("rewards", "old_values", "group_ids")
    inputs = AdvantageInputs(
        rewards=batch.rewards,
        values=batch.old_values,
        mask=batch.response_mask,
        group_ids=batch.group_ids,
        kl=batch.kl if cfg.kl.in_reward else None,
        kl_coef=cfg.kl.coef,
        gamma=cfg.gamma,
        lam=cfg.lam,
    )
    estimator = ADVANTAGE_ESTIMATORS[cfg.advantage].estimate
    advantages, returns = estimate_advantages(estimator, inputs, cfg.whiten_advantages)
    return replace(batch, advantages=advantages, returns=returns)
