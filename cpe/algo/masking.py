"""Masked reductions over ``[batch, tokens]`` tensors (mask: 1/True on valid tokens)."""

from __future__ import annotations

import torch

WHITEN_EPS = 1e-8


def check_same_shape(**tensors: torch.Tensor) -> None:
    """Raise ValueError unless all named tensors have one shape."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name}={shape}" for name, shape in shapes.items())
        raise ValueError(f"shape mismatch: {listed}")


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sum of ``x`` over valid positions (masked values never leak, even NaN/inf)."""
    kept = torch.where(mask.bool(), x * mask.to(x.dtype), torch.zeros_like(x))
    return kept.sum() if dim is None else kept.sum(dim=dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over valid positions; 0 where there are none."""
    weights = mask.to(x.dtype)
    count = weights.sum() if dim is None else weights.sum(dim=dim)
    return masked_sum(x, mask, dim) / count.clamp_min(1e-8)


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Variance over valid positions with Bessel's correction (needs ≥ 2 valid tokens)."""
    count = mask.to(x.dtype).sum()
    if count.item() < 2:
        raise ValueError(f"need at least 2 valid tokens for a variance, got {count.item():g}")
    centred = x - masked_mean(x, mask)
    return masked_sum(centred**2, mask) / (count - 1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """``(x − mean)·rsqrt(var + 1e-8)`` over valid tokens; 0 on masked positions.

    With ``shift_mean=False`` the mean is added back (only the scale changes).
    """
    check_same_shape(x=x, mask=mask)
    mean = masked_mean(x, mask)
    whitened = (x - mean) * torch.rsqrt(masked_var(x, mask) + WHITEN_EPS)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(mask.bool(), whitened, torch.zeros_like(whitened))
