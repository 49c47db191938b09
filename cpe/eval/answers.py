"""Answers of one policy to the eval set, generated on vLLM engines in cached chunks.

A row of ``answers/<policy>.jsonl``: ``{"id", "variant", "answer", "tokens",
"finish_reason"}``. ``variant`` is ``default`` or a controllability-probe suffix
(``brief``, ``detailed``) appended to the question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cpe.config import RolloutConfig
from cpe.data.records import Record
from cpe.eval.cache import JsonlCache
from cpe.prompts import PromptSet, policy_messages, to_token_ids
from cpe.protocols import Generator
from cpe.types import Generation, SamplingSpec

DEFAULT_VARIANT = "default"
PROBE_VARIANTS = ("brief", "detailed")


def eval_sampling(rollout: RolloutConfig) -> SamplingSpec:
    """One answer per prompt at ``rollout.eval_temperature``; 0 is greedy."""
    t = rollout.eval_temperature
    return SamplingSpec(
        n=1,
        temperature=t,
        top_p=rollout.top_p if t > 0 else 1.0,
        max_tokens=rollout.max_new_tokens,
        seed=rollout.seed,
        logprobs=False,
    )


def missing(cache: JsonlCache, records: Sequence[Record], variants: Sequence[str]) -> list:
    return [(r, v) for v in variants for r in records if (r.id, v) not in cache]


class PolicyAnswerer:
    """Turns (record, variant) pairs into answer rows with one engine call."""

    def __init__(self, engine: Generator, tokenizer: Any, prompts: PromptSet, spec: SamplingSpec):
        self.engine = engine
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.spec = spec

    def __call__(self, chunk: Sequence[tuple[Record, str]]) -> list[dict[str, Any]]:
        prompt_ids = [self.prompt_ids(r, v) for r, v in chunk]
        outputs = self.engine.generate(prompt_ids, self.spec)
        return [
            self.row(record, variant, out[0])
            for (record, variant), out in zip(chunk, outputs, strict=True)
        ]

    def row(self, record: Record, variant: str, generation: Generation) -> dict[str, Any]:
        return {
            "id": record.id,
            "variant": variant,
            "answer": generation.text,
            "tokens": len(generation.token_ids),
            "finish_reason": generation.finish_reason,
        }

    def prompt_ids(self, record: Record, variant: str) -> list[int]:
        suffix = None if variant == DEFAULT_VARIANT else variant
        return to_token_ids(self.tokenizer, policy_messages(record, self.prompts, suffix))
