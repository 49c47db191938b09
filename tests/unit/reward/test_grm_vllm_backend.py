"""VLLMBackend rendering, truncation and sampling specs, over a fake engine object.

The engine itself cannot be started cheaply in a unit test; the fake only records
what it was asked and returns canned Generations.
"""

from __future__ import annotations

import pytest
from grm_fakes import GOOD_OUTPUT, FakeEngine

from cpe.config import GRMConfig
from cpe.prompts import apply_chat_template, grm_messages, to_token_ids
from cpe.reward import GRMScorer, PromptTooLong, VLLMBackend, build_grm, grm_regex_for
from cpe.reward.vllm_backend import TRUNCATION_MARKER


def test_renders_rubric_chat_with_the_grm_chat_template(tokenizer, record):
    engine = FakeEngine()
    results = VLLMBackend(engine, tokenizer).score(
        [(record, "Keep the room dark.")], temperature=0.0
    )
    prompts, spec = engine.calls[0]
    assert prompts == [to_token_ids(tokenizer, grm_messages(record, "Keep the room dark."))]
    assert results[0].valid and results[0].text == GOOD_OUTPUT
    assert spec.n == 1 and spec.temperature == 0.0 and spec.max_tokens == 1024 and not spec.logprobs


def test_regex_passed_only_with_guided_decoding(tokenizer, record):
    engine = FakeEngine()
    VLLMBackend(engine, tokenizer, max_new_tokens=400).critique([(record, "a")], temperature=0.9)
    VLLMBackend(engine, tokenizer, guided_decoding=False).critique([(record, "a")])
    (_, guided), (_, free) = engine.calls
    assert guided.regex == grm_regex_for(400) and guided.temperature == 0.9
    assert free.regex is None


def test_long_answer_is_truncated_not_the_rubric(tokenizer, record):
    base = len(to_token_ids(tokenizer, grm_messages(record, "")))
    answer = "Begin here. " + "Sleep in a dark, cool room after work. " * 200 + "THE END"
    backend = VLLMBackend(FakeEngine(), tokenizer, max_prompt_tokens=base + 60)
    ids = backend.render(record, answer)
    assert len(ids) <= base + 60 and backend.truncated_total == 1
    text = tokenizer.decode(ids)
    full = apply_chat_template(tokenizer, grm_messages(record, "Begin here."))
    rubric_head, rubric_tail = full.split("Begin here.")
    assert text.startswith(rubric_head) and text.endswith(rubric_tail)  # rubric intact
    assert "Begin here." in text and TRUNCATION_MARKER.strip() in text and "THE END" not in text


def test_short_answer_is_untouched(tokenizer, record):
    backend = VLLMBackend(FakeEngine(), tokenizer, max_prompt_tokens=100_000)
    assert backend.render(record, "short") == to_token_ids(tokenizer, grm_messages(record, "short"))
    assert backend.truncated_total == 0


def test_prompt_too_long_even_without_answer_fails_only_that_item(tokenizer, record):
    base = len(to_token_ids(tokenizer, grm_messages(record, "")))
    engine = FakeEngine()
    backend = VLLMBackend(engine, tokenizer, max_prompt_tokens=base + 20)
    with pytest.raises(PromptTooLong, match="max_prompt_tokens"):
        VLLMBackend(engine, tokenizer, max_prompt_tokens=base - 10).render(record, "a")
    long_record = type(record)(id="big", persona=record.persona, question="why? " * 200)
    results = backend.score([(long_record, "a"), (record, "b")])
    assert not results[0].valid and "'big'" in results[0].error and results[0].reward is None
    assert results[1].valid
    assert len(engine.calls) == 1 and len(engine.calls[0][0]) == 1  # only the fitting prompt


def test_empty_generation_is_an_error(tokenizer, record):
    result = VLLMBackend(FakeEngine(["  "]), tokenizer).critique([(record, "a")])[0]
    assert not result.valid and "empty output" in result.error


def test_two_call_scorer_uses_both_temperatures(tokenizer, record):
    engine = FakeEngine(["<critique>Cut it down.</critique>", "garbled", GOOD_OUTPUT])
    scorer = GRMScorer(VLLMBackend(engine, tokenizer), retries=1, backoff_s=0.0)
    critique = scorer.critique([(record, "a")])[0]
    score = scorer.score([(record, "a")])[0]
    assert critique.valid and critique.critique == "Cut it down." and critique.reward is None
    assert score.valid and score.attempts == 2 and score.reward is not None
    assert [spec.temperature for _, spec in engine.calls] == [0.9, 0.0, 0.0]


def test_build_grm_vllm(tokenizer, record):
    engine = FakeEngine()
    cfg = GRMConfig(backend="vllm", max_new_tokens=256, retries=0)
    scorer = build_grm(cfg, engine_pool=engine, tokenizer=tokenizer, max_prompt_tokens=50_000)
    assert scorer.score([(record, "a")])[0].valid
    assert engine.calls[0][1].regex == grm_regex_for(256)
    assert scorer.backend.max_prompt_tokens == 50_000


def test_empty_output_is_reasked_but_a_prompt_too_long_is_not(tokenizer, record):
    base = len(to_token_ids(tokenizer, grm_messages(record, "")))
    engine = FakeEngine(["  ", GOOD_OUTPUT])
    scorer = GRMScorer(
        VLLMBackend(engine, tokenizer, max_prompt_tokens=base + 20), retries=2, backoff_s=0.0
    )
    long_record = type(record)(id="big", persona=record.persona, question="why? " * 200)
    too_long, empty_then_good = scorer.score([(long_record, "a"), (record, "b")])
    assert not too_long.valid and not too_long.retryable and too_long.attempts == 1
    assert empty_then_good.valid and empty_then_good.attempts == 2
    assert [len(prompts) for prompts, _ in engine.calls] == [1, 1]  # only "b", twice
