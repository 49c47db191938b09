"""Policy and critic losses: PPO clip, the CPE hybrid on/off-policy loss, clipped value loss.

Every loss is a token-mean over the valid tokens it is given and returns
``(loss, metrics)`` with metrics as detached python floats.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from cpe.algo.masking import check_same_shape, masked_mean, masked_sum

BEHAVIOUR_EPS = 1e-6


def _scalar(x: torch.Tensor) -> float:
    return float(x.detach().item())


def _zero_masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # Padding log-probs may be ±inf; zeroing them *before* exp keeps gradients finite.
    return torch.where(mask, x, torch.zeros_like(x))


def _clipped_surrogate(
    ratio: torch.Tensor, advantages: torch.Tensor, clip_low: float, clip_high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO loss ``max(−A·r, −A·clip(r))`` and where the clipped branch wins."""
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    return torch.maximum(unclipped, clipped), clipped > unclipped


def ppo_clip_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO clipped surrogate, token-mean over valid tokens.

    Metrics: ``clip_frac`` (share of valid tokens where the clipped branch is strictly
    larger), ``approx_kl`` (k1: mean of ``old_logp − logp``), ``ratio_mean``.
    """
    check_same_shape(logp=logp, old_logp=old_logp, advantages=advantages, mask=mask)
    valid = mask.bool()
    log_ratio = _zero_masked(logp - old_logp, valid)
    ratio = torch.exp(log_ratio)
    per_token, clipped = _clipped_surrogate(ratio, advantages, clip_low, clip_high)
    loss = masked_mean(per_token, valid)
    metrics = {
        "clip_frac": _scalar(masked_mean(clipped.to(ratio.dtype), valid)),
        "approx_kl": _scalar(masked_mean(-log_ratio, valid)),
        "ratio_mean": _scalar(masked_mean(ratio, valid)),
    }
    return loss, metrics


def _off_policy_ratio(logp: torch.Tensor, behaviour_logp: torch.Tensor) -> torch.Tensor:
    """``π_θ / (μ + 1e-6)`` computed from log-probs, as the released code does."""
    return torch.exp(logp) / (torch.exp(behaviour_logp) + BEHAVIOUR_EPS)


def _group_metrics(
    prefix: str, ratio: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, rows: int
) -> dict[str, float]:
    return {
        f"{prefix}/ratio_mean": _scalar(masked_mean(ratio, mask)),
        f"{prefix}/adv_abs_mean": _scalar(masked_mean(advantages.abs(), mask)),
        f"{prefix}/num_tokens": _scalar(mask.sum()),
        f"{prefix}/num_rows": float(rows),
    }


def hybrid_policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    behaviour_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    is_edit: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    edit_ratio_cap: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """CPE loss: PPO clip on original rows, unclipped off-policy term on edited rows.

    Edited rows (``is_edit[b]``) use ``−A·π_θ/(μ + 1e-6)`` with μ = ``exp(behaviour_logp)``
    (the edit's log-probs under the edit prompt); ``old_logp`` is ignored there and
    ``behaviour_logp`` is ignored on original rows. With ``edit_ratio_cap`` the ratio
    is clamped to ≤ cap and capped tokens pass no gradient. One token-mean over all
    valid tokens of the batch, originals and edits together.
    """
    check_same_shape(
        logp=logp,
        old_logp=old_logp,
        behaviour_logp=behaviour_logp,
        advantages=advantages,
        mask=mask,
    )
    if is_edit.shape != logp.shape[:1]:
        raise ValueError(
            f"is_edit must be [batch]={tuple(logp.shape[:1])}, got {tuple(is_edit.shape)}"
        )
    valid = mask.bool()
    edit_rows = is_edit.bool().unsqueeze(1).expand_as(valid)
    orig_mask, edit_mask = valid & ~edit_rows, valid & edit_rows

    orig_ratio = torch.exp(_zero_masked(logp - old_logp, orig_mask))
    orig_loss, orig_clipped = _clipped_surrogate(orig_ratio, advantages, clip_low, clip_high)

    edit_ratio = _off_policy_ratio(
        _zero_masked(logp, edit_mask), _zero_masked(behaviour_logp, edit_mask)
    )
    used_ratio = edit_ratio if edit_ratio_cap is None else edit_ratio.clamp(max=edit_ratio_cap)
    edit_loss = -advantages * used_ratio

    per_token = torch.where(edit_rows, edit_loss, orig_loss)
    loss = masked_sum(per_token, valid) / valid.sum().clamp_min(1)

    capped = edit_ratio > edit_ratio_cap if edit_ratio_cap is not None else torch.zeros_like(valid)
    num_edit_rows = int(is_edit.bool().sum())
    metrics = {
        **_group_metrics("orig", orig_ratio, advantages, orig_mask, len(is_edit) - num_edit_rows),
        "orig/clip_frac": _scalar(masked_mean(orig_clipped.to(logp.dtype), orig_mask)),
        **_group_metrics("edit", edit_ratio, advantages, edit_mask, num_edit_rows),
        "edit/capped_frac": _scalar(masked_mean(capped.to(logp.dtype), edit_mask)),
    }
    return loss, metrics


def ppo_policy_loss(logp, old_logp, behaviour_logp, advantages, mask, is_edit, **clip):
    """Plain PPO under the policy-loss signature (argument types as in
    :func:`hybrid_policy_loss`; ``clip_low``/``clip_high`` as keywords, ``behaviour_logp``
    and ``edit_ratio_cap`` unused). Every row is on-policy, so a batch with edited rows
    is refused: they need the off-policy term of the hybrid loss."""
    if bool(is_edit.bool().any()):
        raise ValueError("algorithm.policy_loss=ppo has no off-policy term for edited rows")
    bounds = {k: v for k, v in clip.items() if k in ("clip_low", "clip_high")}
    return ppo_clip_loss(logp, old_logp, advantages, mask, **bounds)


PolicyLoss = Callable[..., tuple[torch.Tensor, dict[str, float]]]
# algorithm.policy_loss -> loss; one signature:
# (logp, old_logp, behaviour_logp, advantages, mask, is_edit, clip_low, clip_high, edit_ratio_cap)
POLICY_LOSSES: dict[str, PolicyLoss] = {"ppo": ppo_policy_loss, "hybrid": hybrid_policy_loss}


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip: float | None = 0.5,
) -> tuple[torch.Tensor, dict[str, float]]:
    """½·token-mean of ``max((V−G)², (clip(V, V_old ± clip) − G)²)``; ``clip=None`` disables clipping.

    Metrics: ``vf_clip_frac`` (share of valid tokens where the clipped term is strictly
    larger), ``value_mean``.
    """
    check_same_shape(values=values, old_values=old_values, returns=returns, mask=mask)
    valid = mask.bool()
    unclipped = (values - returns) ** 2
    if clip is None:
        clipped = unclipped
    else:
        clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
        clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped, clipped), valid)
    metrics = {
        "vf_clip_frac": _scalar(masked_mean((clipped > unclipped).to(values.dtype), valid)),
        "value_mean": _scalar(masked_mean(values, valid)),
    }
    return loss, metrics
