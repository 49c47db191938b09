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
    """``log_softmax(logits / T)`` of each token, ``[b, L]``, 0 where no logits are.

    The one computation behind both recomputed behaviour log-probs and π_θ in the
    loss: fp32, temperature-scaled, no top-k/top-p renormalisation. ``logits`` may
    cover only the last ``k ≤ L`` positions (a model run with ``logits_to_keep=k``):
    then tokens before ``L − k + 1`` get 0, as position 0 always does.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    first = _first_predicted(logits, input_ids)
    scaled = logits[:, :-1].float() / temperature
    targets = input_ids[:, first:].unsqueeze(-1)
    picked = scaled.gather(-1, targets).squeeze(-1)
    logp = picked - torch.logsumexp(scaled, dim=-1)
    return F.pad(logp, (first, 0))


def token_entropy(
    logits: torch.Tensor, input_ids: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Entropy of the next-token distribution, ``[b, L]``, aligned (and padded) like
    :func:`token_logprobs`."""
    first = _first_predicted(logits, input_ids)
    logp = torch.log_softmax(logits[:, :-1].float() / temperature, dim=-1)
    return F.pad(-(logp.exp() * logp).sum(-1), (first, 0))


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
