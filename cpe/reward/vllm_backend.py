"""A GRM served by in-process vLLM engines (the GRM pool, cluster.pools.grm).

Works over any object with ``generate(prompt_ids, spec) -> list[list[Generation]]``
(the engine pool). Prompts are the rubric chat from :func:`cpe.prompts.grm_messages`
rendered with the GRM tokenizer's chat template.

Truncation policy: when a prompt exceeds ``max_prompt_tokens`` only the ANSWER is cut
(from its end, with a visible marker); the rubric, profile and question are never
touched, because a GRM without its rubric scores on a different scale. If even an
empty answer does not fit, the item fails with an error instead of being scored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from cpe.data.records import Record
from cpe.prompts import DEFAULT, PromptSet, grm_messages, to_token_ids
from cpe.reward.base import GRMBackend, Item, Reply
from cpe.reward.format import grm_regex_for
from cpe.types import Generation, SamplingSpec

log = logging.getLogger(__name__)

TRUNCATION_MARKER = "\n[... answer truncated ...]"
DEFAULT_MAX_PROMPT_TOKENS = 4096
_TRUNCATION_ROUNDS = 8


class Engine(Protocol):
    def generate(
        self, prompt_ids: list[list[int]], spec: SamplingSpec
    ) -> list[list[Generation]]: ...


class PromptTooLong(ValueError):
    """The GRM prompt does not fit even with the answer cut to nothing."""


class VLLMBackend(GRMBackend):
    def __init__(
        self,
        engine: Engine,
        tokenizer: Any,
        prompts: PromptSet = DEFAULT,
        max_new_tokens: int = 1024,
        max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
        guided_decoding: bool = True,
        max_critique_chars: int | None = None,
    ):
        self.engine = engine
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.regex = grm_regex_for(max_new_tokens, max_critique_chars) if guided_decoding else None
        self.truncated_total = 0

    def sampling_spec(self, temperature: float) -> SamplingSpec:
        return SamplingSpec(
            n=1,
            temperature=temperature,
            top_p=1.0,
            max_tokens=self.max_new_tokens,
            regex=self.regex,
            logprobs=False,
            # Seeded per prompt by the engine: critiques are reproducible, so a resumed
            # run edits from the same critiques as an uninterrupted one.
            seed=0,
        )

    def render(self, record: Record, answer: str) -> list[int]:
        """Prompt token ids, with the answer cut so the prompt fits ``max_prompt_tokens``."""
        ids = self._ids(record, answer)
        if len(ids) <= self.max_prompt_tokens:
            return ids
        answer_ids = self.tokenizer.encode(answer.strip(), add_special_tokens=False)
        keep = len(answer_ids)
        # Re-tokenizing the cut text can shift token boundaries, so shrink until it fits.
        for _ in range(_TRUNCATION_ROUNDS):
            keep = max(0, keep - (len(ids) - self.max_prompt_tokens))
            ids = self._ids(record, self._cut(answer_ids, keep))
            if len(ids) <= self.max_prompt_tokens:
                self.truncated_total += 1
                return ids
            if keep == 0:
                break
        raise PromptTooLong(
            f"GRM prompt for record {record.id!r} has {len(ids)} tokens with the answer cut "
            f"to {keep} tokens, over max_prompt_tokens={self.max_prompt_tokens}; shorten the "
            "rubric / profile / question or raise the limit"
        )

    def generate(self, items: Sequence[Item], temperature: float) -> list[Reply]:
        replies: list[Reply | None] = [None] * len(items)
        prompts: list[list[int]] = []
        positions: list[int] = []
        for i, (record, answer) in enumerate(items):
            try:
                prompts.append(self.render(record, answer))
                positions.append(i)
            except PromptTooLong as exc:
                replies[i] = Reply(error=str(exc))
        if prompts:
            outputs = self.engine.generate(prompts, self.sampling_spec(temperature))
            if len(outputs) != len(prompts):
                raise RuntimeError(
                    f"engine returned {len(outputs)} outputs for {len(prompts)} prompts"
                )
            for i, samples in zip(positions, outputs, strict=True):
                replies[i] = _reply(samples)
        return [r if r is not None else Reply(error="no output") for r in replies]

    def _ids(self, record: Record, answer: str) -> list[int]:
        return to_token_ids(self.tokenizer, grm_messages(record, answer, self.prompts))

    def _cut(self, answer_ids: list[int], keep: int) -> str:
        head = self.tokenizer.decode(answer_ids[:keep], skip_special_tokens=True)
        return head.rstrip() + TRUNCATION_MARKER

    def __repr__(self) -> str:
        return (
            f"VLLMBackend(max_new_tokens={self.max_new_tokens}, "
            f"max_prompt_tokens={self.max_prompt_tokens}, guided={self.regex is not None})"
        )


def _reply(samples: list[Generation]) -> Reply:
    if not samples:
        return Reply(error="engine returned no sample")
    sample = samples[0]
    if not sample.text.strip():
        return Reply(
            sample.text,
            error=f"empty output (finish_reason={sample.finish_reason})",
            retryable=True,
        )
    return Reply(sample.text)
