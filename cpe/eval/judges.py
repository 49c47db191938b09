"""Pairwise judges: which of two answers serves the user better, as a probability.

``JUDGE_BACKENDS`` maps ``eval.judge.backend`` to a builder. Every judge returns one
:class:`Verdict` per ``(record, answer_a, answer_b)`` item: ``p_first`` is the
probability that answer A (shown first) is the better one, read from the judge's
next-token probabilities of "A" and "B" (:func:`p_first_from_logprobs`, one rule for
every backend) where the backend gives them, else from the reply's text. A verdict
is ``invalid`` (``p_first=None``: counted, never scored as a tie) when neither letter
comes back; ``transient`` verdicts (transport failures) are not cached, so a rerun
asks again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cpe.config import JudgeConfig
from cpe.data.records import Record
from cpe.prompts import DEFAULT, PromptSet, judge_messages, to_token_ids
from cpe.protocols import Generator
from cpe.types import Generation, SamplingSpec

JudgeItem = tuple[Record, str, str]
CHOICES = ("A", "B")
TRUNCATION_MARKER = "\n[... answer truncated ...]"
# Alternatives read at the first answer token (vLLM's default cap, max_logprobs, is 20).
TOP_LOGPROBS = 20
# The vLLM judge's engines hold the prompt plus this many tokens (it generates one).
JUDGE_LEN_SLACK = 8
# One greedy token with its alternatives: the judge's reply is read, not sampled.
JUDGE_SPEC = SamplingSpec(
    n=1, temperature=0.0, max_tokens=1, logprobs=False, top_logprobs=TOP_LOGPROBS
)
_LETTER = re.compile(r"\W*(?:answer\s*[:\-]?\s*)?\(?([AB])\)?\W*", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    p_first: float | None  # P(answer A is better); None = invalid
    source: str  # "logprobs" | "text" | "invalid" | "transient"
    raw: str = ""
    attempts: int = 1


class JudgeEngine(Generator, Protocol):
    """The engine pool as the vLLM judge uses it."""

    def token_logprobs(
        self, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]]
    ) -> list[list[float]]: ...


class PairwiseJudge(Protocol):
    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]: ...


def letter_of(text: str) -> str | None:
    """ "A" or "B" when the reply is just that letter (optionally "Answer: (b)."), else None."""
    match = _LETTER.fullmatch(text.strip())
    return match.group(1).upper() if match else None


def p_first_from_logprobs(alternatives: Sequence[tuple[str, float]]) -> float | None:
    """P(A) / (P(A) + P(B)) over the first token's alternatives, each letter's probability
    summed over its spellings ("A", " A"); None if neither letter is there. Lower-case
    "a" is the article, not a verdict."""
    import math

    mass = dict.fromkeys(CHOICES, 0.0)
    for token, logprob in alternatives:
        letter = token.strip()
        if letter in mass:
            mass[letter] += math.exp(logprob)
    total = mass["A"] + mass["B"]
    return mass["A"] / total if total > 0 else None


class VLLMJudge:
    """The judge on vLLM engines: one greedy token per judgment, read from its top
    alternatives; when neither letter is among them (a judge that would rather say
    something else), both letters are scored directly with one prompt-log-prob pass, so
    every judgment that fits gets a verdict."""

    def __init__(
        self,
        engine: JudgeEngine,
        tokenizer: Any,
        prompts: PromptSet = DEFAULT,
        max_prompt_tokens: int = 4096,
    ):
        self.engine = engine
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.max_prompt_tokens = max_prompt_tokens
        # Each letter as the first token of the answer, for the direct scoring pass.
        self.choice_ids = [tokenizer.encode(c, add_special_tokens=False)[0] for c in CHOICES]

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        prompts = [self.prompt_ids(*item) for item in items]
        fitting = [i for i, ids in enumerate(prompts) if ids is not None]
        outputs = self.engine.generate([prompts[i] for i in fitting], JUDGE_SPEC) if fitting else []
        unfit = f"prompt over eval.judge.max_prompt_tokens={self.max_prompt_tokens}"
        verdicts: list[Verdict] = [Verdict(None, "invalid", unfit)] * len(items)
        for i, out in zip(fitting, outputs, strict=True):
            verdicts[i] = self._from_alternatives(out[0])
        unread = [i for i in fitting if verdicts[i].p_first is None]
        for i, verdict in zip(unread, self._scored([prompts[i] for i in unread]), strict=True):
            verdicts[i] = verdict
        return verdicts

    def _from_alternatives(self, generation: Generation) -> Verdict:
        first = generation.top_logprobs[0] if generation.top_logprobs else {}
        alternatives = [(self.tokenizer.decode([tok]), lp) for tok, lp in first.items()]
        p_first = p_first_from_logprobs(alternatives)
        if p_first is None:
            return Verdict(None, "invalid", f"neither A nor B in the top {TOP_LOGPROBS}")
        return Verdict(p_first, "logprobs", f"P(A|A or B)={p_first:.4g}")

    def _scored(self, prompts: list[list[int]]) -> list[Verdict]:
        if not prompts:
            return []
        a, b = ([[token]] * len(prompts) for token in self.choice_ids)
        logprobs = self.engine.token_logprobs(prompts + prompts, a + b)
        n = len(prompts)
        return [
            Verdict(
                p_first_from_logprobs([("A", logprobs[i][0]), ("B", logprobs[n + i][0])]),
                "logprobs",
                "scored: neither letter among the top alternatives",
            )
            for i in range(n)
        ]

    def prompt_ids(self, record: Record, answer_a: str, answer_b: str) -> list[int] | None:
        """The judge prompt; when too long, the longer answer is cut first (never the
        template, profile or question), each cut marked. None if even that cannot fit."""
        for _ in range(4):
            ids = self._ids(record, answer_a, answer_b)
            over = len(ids) - self.max_prompt_tokens
            if over <= 0:
                return ids
            answer_a, answer_b = self._cut(answer_a, answer_b, over + 16)
        return None

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


def _vllm(cfg: JudgeConfig, prompts: PromptSet, engine: JudgeEngine | None, tokenizer: Any):
    return VLLMJudge(engine, tokenizer, prompts, cfg.max_prompt_tokens)


def _openai(cfg: JudgeConfig, prompts: PromptSet, engine: JudgeEngine | None, tokenizer: Any):
    # Imported here: the openai client loads only when this backend is used.
    from cpe.eval.openai_judge import OpenAIJudge

    return OpenAIJudge(cfg, prompts)


#: eval.judge.backend -> builder(judge config, prompts, GRM-pool engines or None, tokenizer or None).
JUDGE_BACKENDS: dict[str, Callable[..., PairwiseJudge]] = {"vllm": _vllm, "openai": _openai}


def judge_description(cfg: JudgeConfig) -> str:
    """Names the judge in cache metadata and results."""
    if cfg.backend == "openai":
        return f"openai:{cfg.openai.base_url}#{cfg.openai.model}"
    return f"{cfg.backend}:{cfg.model}"
