"""Per-token KL estimators against a reference model, and token-level reward assembly."""

from __future__ import annotations

from collections.abc import Callable

import torch

from cpe.algo.lookup import choose
from cpe.algo.masking import check_same_shape

K3_LOG_RATIO_CLAMP = 20.0
K3_VALUE_CLAMP = 10.0


def kl_k1(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k1 = log π − log π_ref (unbiased, can be negative per token)."""
    return logp - ref_logp


def kl_k2(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k2 = ½ (log π − log π_ref)²."""
    return 0.5 * (logp - ref_logp) ** 2


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 = exp(d) − d − 1 with d = log π_ref − log π clamped to ±20, result clamped to ±10."""
    d = torch.clamp(ref_logp - logp, -K3_LOG_RATIO_CLAMP, K3_LOG_RATIO_CLAMP)
    return torch.clamp(torch.exp(d) - d - 1.0, -K3_VALUE_CLAMP, K3_VALUE_CLAMP)


KL_ESTIMATORS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "k1": kl_k1,
    "k2": kl_k2,
    "k3": kl_k3,
}


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-token KL estimate of ``kind`` (k1, k2, k3); no reduction."""
    check_same_shape(logp=logp, ref_logp=ref_logp)
    return choose(KL_ESTIMATORS, kind, "KL estimator")(logp, ref_logp)


def last_valid_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last valid token of each row (``[batch]``); ValueError for empty rows."""
    valid = mask.bool()
    empty = torch.nonzero(~valid.any(dim=1)).flatten().tolist()
    if empty:
        raise ValueError(f"rows with no valid tokens: {empty}")
    positions = torch.arange(1, valid.shape[1] + 1, device=mask.device).expand_as(valid)
    return (positions * valid).argmax(dim=1)


def token_level_rewards(
    scores: torch.Tensor,
    mask: torch.Tensor,
    kl: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> torch.Tensor:
    """Put each scalar score on its row's last valid token; optionally subtract kl_coef·kl.

    ``scores`` is ``[batch]``; the KL term (``[batch, tokens]``) is charged on every
    valid token. NaN scores (invalid GRM judgements) are rejected, never zero-filled.
    """
    if scores.shape != mask.shape[:1]:
        raise ValueError(
            f"scores must be [batch]={tuple(mask.shape[:1])}, got {tuple(scores.shape)}"
        )
    if torch.isnan(scores).any():
        bad = torch.nonzero(torch.isnan(scores)).flatten().tolist()
        raise ValueError(f"NaN scores at rows {bad}; drop invalid samples first")
    dtype = scores.dtype if scores.is_floating_point() else torch.get_default_dtype()
    rewards = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    rows = torch.arange(mask.shape[0], device=mask.device)
    rewards[rows, last_valid_index(mask)] = scores.to(dtype)
    if kl is not None and kl_coef != 0.0:
        check_same_shape(kl=kl, mask=mask)
        rewards = rewards - kl_coef * torch.where(mask.bool(), kl, torch.zeros_like(kl))
    return rewards
