"""Pairwise judges: which of two answers serves the user better, as a probability.

``JUDGE_BACKENDS`` maps ``eval.judge.backend`` to a builder. Every judge returns one
:class:`Verdict` per ``(record, answer_a, answer_b)`` item: ``p_first`` is the
probability that answer A (shown first) is the better one. The vLLM judge reads it
from the judge's next-token probabilities of "A" and "B" (always available); the
OpenAI-compatible judge reads the returned top log-probs when the endpoint gives
them, else the reply's text. A reply naming neither is re-asked, and after
``retries`` re-asks it is invalid (``p_first=None``): counted, never scored as a tie.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cpe.config import JudgeConfig
from cpe.data.records import Record
from cpe.prompts import DEFAULT, PromptSet, judge_messages, to_token_ids
from cpe.types import Generation, SamplingSpec

JudgeItem = tuple[Record, str, str]
CHOICES = ("A", "B")
TRUNCATION_MARKER = "\n[... answer truncated ...]"
# Alternatives read at the first answer token (vLLM's default cap, max_logprobs, is 20).
TOP_LOGPROBS = 20
# One greedy token with its alternatives: the judge's reply is read, not sampled.
JUDGE_SPEC = SamplingSpec(
    n=1, temperature=0.0, max_tokens=1, logprobs=False, top_logprobs=TOP_LOGPROBS
)
_LETTER = re.compile(r"\W*(?:answer\s*[:\-]?\s*)?\(?([AB])\)?\W*", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    p_first: float | None  # P(answer A is better); None = invalid
    source: str  # "logprobs" | "text" | "invalid"
    raw: str = ""
    attempts: int = 1


class PairwiseJudge(Protocol):
    description: str  # names the judge in cache metadata and results

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]: ...


class Generator(Protocol):
    """The part of the engine pool the vLLM judge uses."""

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], spec: SamplingSpec
    ) -> list[list[Generation]]: ...


def letter_of(text: str) -> str | None:
    """ "A" or "B" when the reply is just that letter (optionally "Answer: (b)."), else None."""
    match = _LETTER.fullmatch(text.strip())
    return match.group(1).upper() if match else None


def p_first_from_logprobs(alternatives: Sequence[tuple[str, float]]) -> float | None:
    """P(A) / (P(A) + P(B)) over the first token's alternatives; None if neither is there."""
    mass = dict.fromkeys(CHOICES, 0.0)
    for token, logprob in alternatives:
        letter = token.strip().upper()
        if letter in mass:
            mass[letter] += math.exp(logprob)
    total = mass["A"] + mass["B"]
    return mass["A"] / total if total > 0 else None


class VLLMJudge:
    """The judge on vLLM engines: one greedy token per judgment, read as P(A) / (P(A) +
    P(B)) from its alternatives; when neither letter is among the top alternatives the
    verdict is invalid (re-asking greedily would give the same)."""

    def __init__(
        self,
        engine: Generator,
        tokenizer: Any,
        prompts: PromptSet = DEFAULT,
        max_prompt_tokens: int = 4096,
        description: str = "vllm",
    ):
        self.engine = engine
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.max_prompt_tokens = max_prompt_tokens
        self.description = description
        # The first token of each letter as the assistant turn's first token.
        self.choice_ids = [tokenizer.encode(c, add_special_tokens=False)[0] for c in CHOICES]

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        if not items:
            return []
        outputs = self.engine.generate([self.prompt_ids(*item) for item in items], JUDGE_SPEC)
        return [self._verdict(out[0]) for out in outputs]

    def _verdict(self, generation: Generation) -> Verdict:
        first = generation.top_logprobs[0] if generation.top_logprobs else {}
        a, b = (first.get(token) for token in self.choice_ids)
        if a is None and b is None:
            return Verdict(None, "invalid", f"neither A nor B in the top {TOP_LOGPROBS}")
        p_a = 0.0 if a is None else math.exp(a)
        p_b = 0.0 if b is None else math.exp(b)
        return Verdict(p_a / (p_a + p_b), "logprobs", f"P(A)={p_a:.4g} P(B)={p_b:.4g}")

    def prompt_ids(self, record: Record, answer_a: str, answer_b: str) -> list[int]:
        """The judge prompt; when too long, the longer answer is cut first (never the
        template, profile or question), each cut marked."""
        for _ in range(4):
            ids = self._ids(record, answer_a, answer_b)
            over = len(ids) - self.max_prompt_tokens
            if over <= 0:
                return ids
            answer_a, answer_b = self._cut(answer_a, answer_b, over + 16)
        raise ValueError(
            f"record {record.id!r}: the judge prompt does not fit "
            f"eval.judge.max_prompt_tokens={self.max_prompt_tokens} even with answers cut"
        )

    def _ids(self, record: Record, a: str, b: str) -> list[int]:
        return to_token_ids(self.tokenizer, judge_messages(record, a, b, self.prompts))

    def _cut(self, a: str, b: str, excess: int) -> tuple[str, str]:
        a, b = a.removesuffix(TRUNCATION_MARKER), b.removesuffix(TRUNCATION_MARKER)
        marker = len(self.tokenizer.encode(TRUNCATION_MARKER, add_special_tokens=False))
        ta = self.tokenizer.encode(a, add_special_tokens=False)
        tb = self.tokenizer.encode(b, add_special_tokens=False)
        cap = _water_level(len(ta), len(tb), len(ta) + len(tb) - excess - 2 * marker)
        return tuple(
            self.tokenizer.decode(t[:cap]) + TRUNCATION_MARKER if len(t) > cap else s
            for s, t in ((a, ta), (b, tb))
        )


def _water_level(len_a: int, len_b: int, budget: int) -> int:
    """The largest cap c with min(len_a, c) + min(len_b, c) <= budget (0 at worst)."""
    if budget <= 0:
        return 0
    short, long_ = sorted((len_a, len_b))
    if 2 * short >= budget:
        return budget // 2
    return budget - short if budget - short < long_ else long_


def build_vllm_judge(cfg: JudgeConfig, prompts: PromptSet, engine: Any, tokenizer: Any):
    return VLLMJudge(engine, tokenizer, prompts, cfg.max_prompt_tokens, f"vllm:{cfg.model}")


def build_openai_judge(cfg: JudgeConfig, prompts: PromptSet, engine: Any, tokenizer: Any):
    # Imported here: the openai client loads only when this backend is used.
    from cpe.eval.openai_judge import OpenAIJudge

    return OpenAIJudge(cfg, prompts)


#: eval.judge.backend -> builder(cfg, prompts, engine pool or None, tokenizer or None).
JUDGE_BACKENDS: dict[str, Callable[..., PairwiseJudge]] = {
    "vllm": build_vllm_judge,
    "openai": build_openai_judge,
}
