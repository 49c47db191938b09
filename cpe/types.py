"""Plain data passed between the driver and the actors (picklable, no engine types)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SamplingSpec:
    """What an engine should sample; engine adapters translate it to their own params."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 64
    seed: int | None = None
    # A regular expression the output must match (vLLM structured outputs), or None.
    regex: str | None = None
    logprobs: bool = True
    # > 0: also return this many most likely alternatives (token id -> log-prob) at each
    # position (the pairwise judge reads P("A") vs P("B") from the first one).
    top_logprobs: int = 0


@dataclass
class Generation:
    """One sampled completion of one prompt."""

    prompt_ids: list[int]
    token_ids: list[int]
    text: str
    # The engine's log-prob of each sampled token (vLLM: raw, before temperature);
    # used for diagnostics, never as the PPO behaviour policy (that is recomputed).
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "length"
    # Per position, token id -> raw log-prob of the most likely tokens (SamplingSpec.top_logprobs).
    top_logprobs: list[dict[int, float]] = field(default_factory=list)
