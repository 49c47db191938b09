import json
import math

import pytest
from unit.reward.grm_fakes import ChatServer, Response

from cpe.config import JudgeConfig, OpenAIBackendConfig
from cpe.eval.judges import (
    TRUNCATION_MARKER,
    VLLMJudge,
    _water_level,
    letter_of,
    p_first_from_logprobs,
)
from cpe.eval.openai_judge import OpenAIJudge

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "letter"),
    [("A", "A"), (" b\n", "B"), ("Answer: (A).", "A"), ("A is better", None), ("", None)],
)
def test_letter_of(text, letter):
    assert letter_of(text) == letter


def test_p_first_from_logprobs_sums_variants_and_normalises():
    alts = [("A", math.log(0.6)), (" A", math.log(0.1)), ("B", math.log(0.3)), ("C", 0.0)]
    assert p_first_from_logprobs(alts) == pytest.approx(0.7)
    # lower-case "a" is the article, not a verdict
    assert p_first_from_logprobs([("a", 0.0), ("B", math.log(0.5))]) == 0.0
    assert p_first_from_logprobs([("x", -1.0)]) is None


def test_water_level():
    assert _water_level(10, 100, 60) == 50  # the short answer stays, the long one is cut
    assert _water_level(40, 40, 60) == 30  # both cut evenly
    assert _water_level(5, 5, -3) == 0


class FakeEngine:
    """One judge token with alternatives: A is likely when answer A says 'good'; a prompt
    holding 'mute' gets alternatives without either letter."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.specs = []

    def generate(self, prompt_ids, spec):
        from cpe.types import Generation

        self.specs.append(spec)
        a, b = (self.tokenizer.encode(c, add_special_tokens=False)[0] for c in "AB")
        out = []
        for ids in prompt_ids:
            text = self.tokenizer.decode(ids)
            first = text.split("<answer_A>")[1].split("</answer_A>")[0]
            good, bad = (a, b) if "good" in first else (b, a)
            top = {good: math.log(0.8), bad: math.log(0.1), 7: math.log(0.05)}
            if "mute" in text:
                top = {7: 0.0}
            out.append([Generation(ids, [good], "A", top_logprobs=[top])])
        return out

    def token_logprobs(self, prompt_ids, response_ids):
        self.scored = len(prompt_ids)
        a = self.tokenizer.encode("A", add_special_tokens=False)[0]
        return [[math.log(0.02 if token == a else 0.06)] for (token,) in response_ids]


def test_vllm_judge_reads_the_letter_probabilities(records, tokenizer):
    engine = FakeEngine(tokenizer)
    judge = VLLMJudge(engine, tokenizer)
    items = [
        (records[0], "a good one", "meh"),
        (records[1], "meh", "good"),
        (records[2], "mute", "x"),
    ]
    verdicts = judge.judge(items)
    assert verdicts[0].p_first == pytest.approx(0.8 / 0.9)
    assert verdicts[1].p_first == pytest.approx(0.1 / 0.9)
    assert [v.source for v in verdicts] == ["logprobs"] * 3
    # no letter among the alternatives: both scored directly, 0.02 / (0.02 + 0.06)
    assert verdicts[2].p_first == pytest.approx(0.25) and engine.scored == 2
    (spec,) = engine.specs  # one greedy token per item, with alternatives
    assert (spec.temperature, spec.max_tokens, spec.top_logprobs) == (0.0, 1, 20)


def test_vllm_judge_cuts_the_longer_answer_not_the_question(records, tokenizer):
    judge = VLLMJudge(FakeEngine(tokenizer), tokenizer, max_prompt_tokens=1000)
    long_answer = "word " * 2000
    ids = judge.prompt_ids(records[0], "short answer", long_answer)
    text = tokenizer.decode(ids)
    assert len(ids) <= 1000
    assert "short answer" in text and records[0].question in text
    assert TRUNCATION_MARKER.strip() in text
    small = VLLMJudge(FakeEngine(tokenizer), tokenizer, max_prompt_tokens=500)
    assert small.prompt_ids(records[0], "a", "b") is None
    (verdict,) = small.judge([(records[0], "a", "b")])
    assert verdict.p_first is None and "max_prompt_tokens=500" in verdict.raw


def _logprob_body(letter_probs: dict[str, float], text: str) -> str:
    alternatives = [
        {"token": t, "logprob": math.log(p), "bytes": None} for t, p in letter_probs.items()
    ]
    choice = {
        "index": 0,
        "finish_reason": "stop",
        "message": {"role": "assistant", "content": text},
        "logprobs": {
            "content": [
                {"token": text, "logprob": -0.1, "bytes": None, "top_logprobs": alternatives}
            ]
        },
    }
    return json.dumps(
        {"id": "x", "object": "chat.completion", "created": 0, "model": "j", "choices": [choice]}
    )


def _judge(server, retries=2):
    cfg = JudgeConfig(
        backend="openai",
        retries=retries,
        openai=OpenAIBackendConfig(base_url=server.base_url, model="j", max_retries=0),
    )
    return OpenAIJudge(cfg)


def test_openai_judge_prefers_logprobs_then_text_then_reasks(records):
    replies = {
        "logprobs": Response(content=None, body=_logprob_body({"A": 0.2, "B": 0.6}, "B")),
        "text": Response(content="A"),
    }

    def respond(n, body):
        assert body["logprobs"] is True and body["top_logprobs"] == 5
        question = body["messages"][0]["content"]
        if "cook" in question:
            return replies["text"]
        if "shoes" in question:  # rambles first, then answers on the re-ask
            return Response(content="Both are fine." if body["temperature"] == 0 else "B")
        return replies["logprobs"]

    server = ChatServer(respond).start()
    try:
        items = [(r, "x", "y") for r in records]
        v = _judge(server).judge(items)
    finally:
        server.stop()
    assert v[0].p_first == pytest.approx(0.25) and v[0].source == "logprobs"
    assert v[1].p_first == 1.0 and v[1].source == "text"
    assert v[2].p_first == 0.0 and v[2].attempts == 2
    assert server.count == 4


def test_openai_judge_marks_invalid_after_retries_and_on_transport_errors(records):
    def respond(n, body):
        if "cook" in body["messages"][0]["content"]:
            return Response(status=500, content=None, body="down")
        return Response(content="I cannot decide.")

    server = ChatServer(respond).start()
    try:
        v = _judge(server, retries=1).judge([(records[0], "x", "y"), (records[1], "x", "y")])
    finally:
        server.stop()
    assert v[0].p_first is None and v[0].source == "invalid" and v[0].attempts == 2
    assert v[1].p_first is None and v[1].source == "transient" and "HTTP 500" in v[1].raw
    assert server.count == 3  # the unparseable one asked twice, the failing one once
