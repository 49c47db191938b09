"""Position alignment between model outputs and the batch's per-token tensors.

A causal LM's output at position ``i − 1`` has seen tokens ``0..i−1`` and predicts
token ``i``. Both the log-prob and the value of token ``i`` are therefore read from
position ``i − 1`` and stored at position ``i``; position 0 (never a response token)
holds 0. So ``values[:, i]`` is V(x, y_<i), the value of the state in which token ``i``
is chosen, and with γ = λ = 1 the GAE advantage of token ``i`` is ``R − values[:, i]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def token_logprobs(
    logits: torch.Tensor, input_ids: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``log_softmax(logits / T)`` of each token, ``[b, L]``, position 0 set to 0.

    The one computation behind both recomputed behaviour log-probs and π_θ in the
    loss: fp32, temperature-scaled, no top-k/top-p renormalisation.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    scaled = logits[:, :-1].float() / temperature
    targets = input_ids[:, 1:].unsqueeze(-1)
    picked = scaled.gather(-1, targets).squeeze(-1)
    logp = picked - torch.logsumexp(scaled, dim=-1)
    return F.pad(logp, (1, 0))


def token_entropy(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Entropy of the next-token distribution, aligned like :func:`token_logprobs`."""
    logp = torch.log_softmax(logits[:, :-1].float() / temperature, dim=-1)
    return F.pad(-(logp.exp() * logp).sum(-1), (1, 0))


def shift_values(per_position: torch.Tensor) -> torch.Tensor:
    """Move head outputs ``[b, L]`` from position ``i − 1`` to token ``i`` (0 at position 0)."""
    return F.pad(per_position[:, :-1], (1, 0))
