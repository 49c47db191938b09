"""The pairwise judge behind any OpenAI-compatible endpoint, on the GRM's transport
(its concurrency limit, retries with backoff, timeouts and key handling)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cpe.config import JudgeConfig
from cpe.eval.judges import JudgeItem, Verdict, letter_of, p_first_from_logprobs
from cpe.prompts import DEFAULT, PromptSet, judge_messages
from cpe.reward.base import Reply
from cpe.reward.openai_backend import OpenAIBackend

REASK_TEMPERATURE = 1.0  # a re-ask at temperature 0 would repeat the same reply
MAX_REPLY_TOKENS = 8
TOP_LOGPROBS = 5


class JudgeTransport(OpenAIBackend):
    """Sends judge prompts and asks for the first token's top log-probs."""

    def request_options(self, item: JudgeItem, temperature: float) -> dict[str, Any]:
        record, answer_a, answer_b = item
        return {
            "model": self.endpoint.model,
            "messages": judge_messages(record, answer_a, answer_b, self.prompts),
            "temperature": temperature,
            "max_tokens": self.max_new_tokens,
            "n": 1,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }


class OpenAIJudge:
    """The judge behind any OpenAI-compatible endpoint (the GRM's transport, with its
    retries, timeouts and key handling)."""

    def __init__(self, cfg: JudgeConfig, prompts: PromptSet = DEFAULT):
        self.transport = JudgeTransport(cfg.openai, prompts, max_new_tokens=MAX_REPLY_TOKENS)
        self.retries = cfg.retries

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(items)
        pending = list(range(len(items)))
        for attempt in range(1, self.retries + 2):
            temperature = 0.0 if attempt == 1 else REASK_TEMPERATURE
            replies = self.transport.generate([items[i] for i in pending], temperature)
            still = []
            for i, reply in zip(pending, replies, strict=True):
                verdicts[i] = _read_reply(reply, attempt)
                if verdicts[i].p_first is None and reply.error is None:
                    still.append(i)  # the judge answered, but not with a letter: ask again
            pending = still
            if not pending:
                break
        return verdicts  # type: ignore[return-value]


def _read_reply(reply: Reply, attempt: int) -> Verdict:
    if reply.error is not None:
        return Verdict(None, "transient", reply.error, attempt)
    if reply.top_logprobs:
        p_first = p_first_from_logprobs(reply.top_logprobs)
        if p_first is not None:
            return Verdict(p_first, "logprobs", reply.text, attempt)
    letter = letter_of(reply.text)
    if letter is None:
        return Verdict(None, "invalid", reply.text, attempt)
    return Verdict(1.0 if letter == "A" else 0.0, "text", reply.text, attempt)
