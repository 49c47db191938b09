"""Pure-math core of CPE: advantages, losses, KL, edit selection, GRM parsing, win rates.

Imports only torch, numpy and the standard library (scikit-learn only when an LC win rate is
fitted), so it is safe to use anywhere.
"""

from cpe.algo.advantages import (
    ADVANTAGE_ESTIMATORS,
    AdvantageInputs,
    estimate_advantages,
    gae,
    gae_estimator,
    grpo_advantages,
    grpo_estimator,
)
from cpe.algo.bradley_terry import bt_loss, normalise_rewards, pairwise_accuracy, reward_stats
from cpe.algo.grm_parse import Judgement, final_score, parse_grm_output
from cpe.algo.kl import KL_ESTIMATORS, kl_penalty, last_valid_index, token_level_rewards
from cpe.algo.losses import (
    POLICY_LOSSES,
    hybrid_policy_loss,
    ppo_clip_loss,
    ppo_policy_loss,
    value_loss,
)
from cpe.algo.masking import masked_mean, masked_var, masked_whiten
from cpe.algo.registry import REGISTRIES, get
from cpe.algo.selection import (
    SELECTION_STRATEGIES,
    SelectionStrategy,
    edit_budget,
    per_group_quota,
    select_edits,
    trim_to_multiple,
)
from cpe.algo.winrate import LC_METHODS, Estimate, lc_win_rate, win_rate

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "KL_ESTIMATORS",
    "LC_METHODS",
    "POLICY_LOSSES",
    "REGISTRIES",
    "SELECTION_STRATEGIES",
    "AdvantageInputs",
    "Estimate",
    "Judgement",
    "bt_loss",
    "normalise_rewards",
    "pairwise_accuracy",
    "reward_stats",
    "SelectionStrategy",
    "edit_budget",
    "estimate_advantages",
    "final_score",
    "gae",
    "gae_estimator",
    "get",
    "grpo_advantages",
    "grpo_estimator",
    "hybrid_policy_loss",
    "kl_penalty",
    "last_valid_index",
    "lc_win_rate",
    "masked_mean",
    "masked_var",
    "masked_whiten",
    "parse_grm_output",
    "per_group_quota",
    "ppo_clip_loss",
    "ppo_policy_loss",
    "select_edits",
    "token_level_rewards",
    "trim_to_multiple",
    "value_loss",
    "win_rate",
]
