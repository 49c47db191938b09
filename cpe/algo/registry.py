"""Config strings → algorithm functions, one table per pluggable choice."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cpe.algo.advantages import gae, grpo_advantages
from cpe.algo.kl import KL_ESTIMATORS
from cpe.algo.lookup import choose
from cpe.algo.losses import hybrid_policy_loss, ppo_clip_loss
from cpe.algo.selection import SELECTION_STRATEGIES

ADVANTAGE_ESTIMATORS: dict[str, Callable[..., Any]] = {
    "gae": gae,
    "grpo": grpo_advantages,
}

POLICY_LOSSES: dict[str, Callable[..., Any]] = {
    "ppo": ppo_clip_loss,
    "hybrid": hybrid_policy_loss,
}

REGISTRIES: dict[str, Mapping[str, Callable[..., Any]]] = {
    "advantage_estimators": ADVANTAGE_ESTIMATORS,
    "selection_strategies": SELECTION_STRATEGIES,
    "kl_estimators": KL_ESTIMATORS,
    "policy_losses": POLICY_LOSSES,
}


def get(registry_name: str, key: str) -> Callable[..., Any]:
    """Look up ``key`` in the registry called ``registry_name``; ValueError lists valid keys."""
    registry = choose(REGISTRIES, registry_name, "registry")
    return choose(registry, key, f"{registry_name} key")
