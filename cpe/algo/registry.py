"""Every pluggable choice by registry name, for lookup by name and for listing.

Each table lives next to the functions it maps and is the one production dispatches
through; this module only gathers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cpe.algo.advantages import ADVANTAGE_ESTIMATORS
from cpe.algo.kl import KL_ESTIMATORS
from cpe.algo.lookup import choose
from cpe.algo.losses import POLICY_LOSSES
from cpe.algo.selection import SELECTION_STRATEGIES
from cpe.algo.winrate import LC_METHODS

REGISTRIES: dict[str, Mapping[str, Any]] = {
    "advantage_estimators": ADVANTAGE_ESTIMATORS,
    "selection_strategies": SELECTION_STRATEGIES,
    "kl_estimators": KL_ESTIMATORS,
    "policy_losses": POLICY_LOSSES,
    "lc_methods": LC_METHODS,
}


def get(registry_name: str, key: str) -> Any:
    """Look up ``key`` in the registry called ``registry_name``; ValueError lists valid keys."""
    registry = choose(REGISTRIES, registry_name, "registry")
    return choose(registry, key, f"{registry_name} key")
