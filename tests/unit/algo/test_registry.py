"""Registries map config strings to functions; cpe.algo stays free of heavy imports."""

import subprocess
import sys
from pathlib import Path

import pytest

from cpe.algo import (
    ADVANTAGE_ESTIMATORS,
    KL_ESTIMATORS,
    LC_METHODS,
    POLICY_LOSSES,
    REGISTRIES,
    SELECTION_STRATEGIES,
    gae_estimator,
    get,
    grpo_estimator,
    hybrid_policy_loss,
    ppo_policy_loss,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_registry_keys():
    assert set(REGISTRIES) == {
        "advantage_estimators",
        "selection_strategies",
        "kl_estimators",
        "policy_losses",
        "lc_methods",
    }
    assert set(LC_METHODS) == {"alpaca_eval", "length_only"}
    assert set(ADVANTAGE_ESTIMATORS) == {"gae", "grpo"}
    assert set(SELECTION_STRATEGIES) == {
        "random",
        "reward_rank",
        "conditional",
        "conditional_strict",
    }
    assert set(KL_ESTIMATORS) == {"k1", "k2", "k3"}
    assert set(POLICY_LOSSES) == {"ppo", "hybrid"}


def test_get_returns_the_registered_function():
    # The estimators and losses production calls, one signature per registry.
    assert get("advantage_estimators", "gae").estimate is gae_estimator
    assert get("advantage_estimators", "grpo").estimate is grpo_estimator
    # GRPO reads no learned values: no value model is placed for it
    assert get("advantage_estimators", "gae").needs_values
    assert not get("advantage_estimators", "grpo").needs_values
    assert get("policy_losses", "ppo") is ppo_policy_loss
    assert get("policy_losses", "hybrid") is hybrid_policy_loss
    assert get("kl_estimators", "k3") is KL_ESTIMATORS["k3"]


def test_unknown_key_lists_the_valid_keys():
    with pytest.raises(ValueError, match=r"unknown policy_losses key 'grpo'; valid: hybrid, ppo"):
        get("policy_losses", "grpo")


def test_unknown_registry_lists_the_registries():
    with pytest.raises(
        ValueError, match="advantage_estimators, kl_estimators, lc_methods, policy_losses"
    ):
        get("optimizers", "adam")


def test_importing_cpe_algo_pulls_in_nothing_heavy():
    heavy = ("ray", "vllm", "deepspeed", "transformers")
    code = (
        "import sys, cpe.algo\n"
        f"loaded = [m for m in {heavy!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=60)
