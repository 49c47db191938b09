"""Reference computations with transformers for the rollout tests (imported by them)."""

from __future__ import annotations

import torch


def perturb_(model: torch.nn.Module, seed: int, scale: float = 0.05) -> None:
    """Add seeded noise to every parameter, the (tied) embedding included."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * scale)


def split_buckets(named: list[tuple[str, torch.Tensor]]) -> list[list[tuple[str, torch.Tensor]]]:
    """Two buckets whose boundary falls between q_proj and k_proj of one layer, so a
    fused vLLM layer (qkv_proj) receives its parts in different buckets."""
    cut = next(
        i for i, (n, _) in enumerate(named) if n.endswith("layers.1.self_attn.k_proj.weight")
    )
    return [named[:cut], named[cut:]]


def hf_token_logprobs(model, prompt: list[int], response: list[int]) -> torch.Tensor:
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logp = model(ids).logits[0].float().log_softmax(-1)
    positions = torch.arange(len(prompt) - 1, len(prompt) + len(response) - 1)
    return logp[positions, torch.tensor(response)]


def hf_greedy(model, prompt: list[int], max_new_tokens: int, eos_id: int) -> list[int]:
    out = list(prompt)
    for _ in range(max_new_tokens):
        with torch.no_grad():
            nxt = int(model(torch.tensor([out])).logits[0, -1].argmax())
        out.append(nxt)
        if nxt == eos_id:
            break
    return out[len(prompt) :]


def max_abs_diff(engine: list[float], reference: torch.Tensor) -> float:
    return float((torch.tensor(engine) - reference).abs().max())
