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
    logits: torch.Tensor, input_ids: torch.Tensor, temperature: float, chunk: int = 0
) -> torch.Tensor:
    """``log_softmax(logits / T)`` of each token, ``[b, L]``, 0 where no logits are.

    The one computation behind both recomputed behaviour log-probs and π_θ in the
    loss: fp32, temperature-scaled, no top-k/top-p renormalisation. ``logits`` may
    cover only the last ``k ≤ L`` positions (a model run with ``logits_to_keep=k``):
    then tokens before ``L − k + 1`` get 0, as position 0 always does. ``chunk`` > 0
    (``learner.logprob_chunk``) computes ``chunk`` positions at a time, each
    recomputed in the backward pass, so that no fp32 copy of the whole
    ``[b, k, vocab]`` logits ever exists; the result is the same.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    first = _first_predicted(logits, input_ids)
    logp = _chunked(_picked_logprobs, logits[:, :-1], input_ids[:, first:], temperature, chunk)
    return F.pad(logp, (first, 0))


def token_entropy(
    logits: torch.Tensor, input_ids: torch.Tensor, temperature: float, chunk: int = 0
) -> torch.Tensor:
    """Entropy of the next-token distribution, ``[b, L]``, aligned (and padded) like
    :func:`token_logprobs`, chunked the same way."""
    first = _first_predicted(logits, input_ids)
    entropy = _chunked(_entropy, logits[:, :-1], input_ids[:, first:], temperature, chunk)
    return F.pad(entropy, (first, 0))


def _picked_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float):
    scaled = logits.float() / temperature
    picked = scaled.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(scaled, dim=-1)


def _entropy(logits: torch.Tensor, targets: torch.Tensor, temperature: float):
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def _chunked(fn, logits: torch.Tensor, targets: torch.Tensor, temperature: float, chunk: int):
    """``fn`` over position chunks of ``logits``/``targets`` (all at once for chunk <= 0);
    with gradients, each chunk's fp32 work is recomputed in backward instead of kept."""
    positions = logits.shape[1]
    if chunk <= 0 or chunk >= positions:
        return fn(logits, targets, temperature)
    from torch.utils.checkpoint import checkpoint

    parts = []
    for start in range(0, positions, chunk):
        piece = logits[:, start : start + chunk], targets[:, start : start + chunk]
        if torch.is_grad_enabled() and logits.requires_grad:
            parts.append(checkpoint(fn, *piece, temperature, use_reentrant=False))
        else:
            parts.append(fn(*piece, temperature))
    return torch.cat(parts, dim=1)


def logits_to_keep(batch) -> int:
    """How many final positions' logits a model run on ``batch`` (a TensorBatch) must
    return: from the position before the first response token on. No row needs the
    prompt positions' next-token distributions, and over a vocabulary of tens of
    thousands the LM head and the log-softmax there cost as much as a few layers."""
    return batch.input_ids.shape[1] - max(batch.first_response_column() - 1, 0)


def _first_predicted(logits: torch.Tensor, input_ids: torch.Tensor) -> int:
    """The first token whose log-prob the logits give: 1 for full logits, L − k + 1
    for the last k positions."""
    kept, length = logits.shape[1], input_ids.shape[1]
    if not 1 <= kept <= length:
        raise ValueError(f"logits cover {kept} positions of a {length}-token batch")
    return length - kept + 1


def shift_values(per_position: torch.Tensor) -> torch.Tensor:
    """Move head outputs ``[b, L]`` from position ``i − 1`` to token ``i`` (0 at position 0)."""
    return F.pad(per_position[:, :-1], (1, 0))
