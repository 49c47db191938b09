"""An in-process vLLM engine (no Ray) on the tiny model: sampling, raw log-probs,
structured outputs, and in-place weight updates checked against transformers."""

from __future__ import annotations

import re

import pytest
from hf_reference import hf_greedy, hf_token_logprobs, max_abs_diff, perturb_, split_buckets

from cpe.types import SamplingSpec
from cpe.weight_sync.buckets import to_wire

TOL = 1e-4
GRM_REGEX = (
    r"<critique>[a-z ]{1,20}</critique>\n<scores>\nHelpfulness: -?[0-5]\n"
    r"Personalization: -?[0-5]\nNaturalness: -?[0-5]\n</scores>"
)


@pytest.fixture(scope="module")
def engine(tiny_model_path, private_tmpdir):
    from cpe.rollout.engine import VLLMEngine
    from cpe.rollout.settings import EngineSettings

    eng = VLLMEngine(EngineSettings(tiny_model_path, dtype="float32", seed=0, max_model_len=512))
    yield eng
    eng.shutdown()


@pytest.fixture(scope="module")
def hf_model(hf_model_factory):
    return hf_model_factory()


def test_sampling_n2_with_raw_logprobs_matches_transformers(engine, hf_model, chat_prompts):
    spec = SamplingSpec(n=2, temperature=1.0, max_tokens=12, seed=3)
    groups = engine.generate(chat_prompts, spec)
    assert [len(g) for g in groups] == [2, 2]
    for prompt, group in zip(chat_prompts, groups, strict=True):
        for gen in group:
            assert gen.prompt_ids == prompt
            assert 0 < len(gen.token_ids) <= 12 and len(gen.logprobs) == len(gen.token_ids)
            assert gen.finish_reason in ("stop", "length")
            ref = hf_token_logprobs(hf_model, prompt, gen.token_ids)
            assert max_abs_diff(gen.logprobs, ref) < TOL
    assert groups[0][0].token_ids != groups[0][1].token_ids  # n samples, not n copies


def test_token_logprobs_equal_sampling_logprobs(engine, chat_prompts):
    gens = [g[0] for g in engine.generate(chat_prompts, SamplingSpec(max_tokens=8, seed=1))]
    scored = engine.token_logprobs(chat_prompts, [g.token_ids for g in gens])
    for gen, lps in zip(gens, scored, strict=True):
        assert len(lps) == len(gen.token_ids)
        assert max(abs(a - b) for a, b in zip(lps, gen.logprobs, strict=True)) < TOL


def test_greedy_matches_transformers(engine, hf_model, chat_prompts, tokenizer):
    gens = engine.generate(chat_prompts, SamplingSpec(temperature=0.0, max_tokens=16))
    for prompt, (gen,) in zip(chat_prompts, gens, strict=True):
        assert gen.token_ids == hf_greedy(hf_model, prompt, 16, tokenizer.eos_token_id)


def test_structured_output_matches_regex(engine, chat_prompts):
    spec = SamplingSpec(n=2, temperature=1.0, max_tokens=128, seed=0, regex=GRM_REGEX)
    groups = engine.generate(chat_prompts, spec)
    texts = [gen.text for group in groups for gen in group]
    assert len(texts) == 4
    for text in texts:
        assert re.fullmatch(GRM_REGEX, text), text


@pytest.mark.parametrize("source", ["named_parameters", "state_dict"])
def test_weight_update_in_two_buckets(source, engine, hf_model_factory, chat_prompts, tokenizer):
    # named_parameters() drops the tied lm_head alias, state_dict() keeps it: the
    # engine's output head must follow the embedding either way.
    model = hf_model_factory()
    perturb_(model, seed=11 if source == "state_dict" else 7)
    named = list(model.state_dict().items() if source == "state_dict" else model.named_parameters())
    before = engine.health()["weight_version"]
    for bucket in split_buckets(named):
        engine.update_weights(bucket)
    info = engine.finish_weight_update()
    assert info["missing"] == [] and "lm_head" in info["repacked"]
    assert engine.health()["weight_version"] == before + 1

    prompt, response = chat_prompts[0], chat_prompts[1][2:12]
    [engine_lp] = engine.token_logprobs([prompt], [response])
    assert max_abs_diff(engine_lp, hf_token_logprobs(model, prompt, response)) < TOL
    [(gen,)] = engine.generate([prompt], SamplingSpec(temperature=0.0, max_tokens=16))
    assert gen.token_ids == hf_greedy(model, prompt, 16, tokenizer.eos_token_id)


def test_update_invalidates_prefix_cache(engine, hf_model_factory):
    # CPU blocks hold 128 tokens: a 300-token prompt leaves full blocks in the prefix
    # cache, which must not be reused with the new weights.
    prompt = [10 + (i * 7) % 400 for i in range(300)]
    spec = SamplingSpec(temperature=0.0, max_tokens=4)
    engine.generate([prompt], spec)
    model = hf_model_factory()
    perturb_(model, seed=13)
    info = engine.load_weight_buckets(
        [to_wire([(n, p.detach()) for n, p in model.named_parameters()])]
    )
    assert info["bytes"] == sum(p.numel() * p.element_size() for p in model.parameters())
    assert info["load_s"] > 0 and info["finish_s"] > 0
    [(gen,)] = engine.generate([prompt], spec)
    assert max_abs_diff(gen.logprobs, hf_token_logprobs(model, prompt, gen.token_ids)) < TOL


def test_restoring_original_weights_restores_logprobs(engine, hf_model, chat_prompts):
    prompt, response = chat_prompts[0], chat_prompts[1][2:12]
    engine.load_weight_buckets([to_wire(list(hf_model.state_dict().items()))])
    [engine_lp] = engine.token_logprobs([prompt], [response])
    assert max_abs_diff(engine_lp, hf_token_logprobs(hf_model, prompt, response)) < TOL


def test_incomplete_update_is_refused_and_blocks_generation(engine, hf_model, chat_prompts):
    partial = [(n, t) for n, t in hf_model.state_dict().items() if "layers.0." not in n]
    engine.update_weights(partial)
    with pytest.raises(RuntimeError, match="unchanged"):
        engine.finish_weight_update()
    with pytest.raises(RuntimeError, match="push a complete set"):
        engine.generate(chat_prompts, SamplingSpec(max_tokens=2))
    engine.load_weight_buckets([to_wire(list(hf_model.state_dict().items()))])
    assert engine.generate(chat_prompts[:1], SamplingSpec(max_tokens=2))[0][0].token_ids


def test_sampling_spec_translation():
    from cpe.rollout.vllm_adapter import to_sampling_params

    greedy = to_sampling_params(SamplingSpec(temperature=0.0, top_p=0.5, logprobs=False))
    assert greedy.temperature == 0.0 and greedy.logprobs is None
    guided = to_sampling_params(SamplingSpec(n=3, temperature=0.7, top_p=0.9, seed=2, regex="a+"))
    assert (guided.n, guided.temperature, guided.top_p, guided.seed) == (3, 0.7, 0.9, 2)
    assert guided.logprobs == 0 and guided.structured_outputs.regex == "a+"
    judge = to_sampling_params(SamplingSpec(temperature=0.0, max_tokens=1, top_logprobs=20))
    assert judge.logprobs == 20 and judge.max_tokens == 1


def test_failed_bucket_leaves_engine_refusing_until_a_full_update(engine, hf_model, chat_prompts):
    named = list(hf_model.state_dict().items())
    with pytest.raises(Exception, match="no_such"):
        engine.update_weights(named[:3] + [("model.no_such.weight", named[0][1])])
    assert engine.health()["broken"]
    with pytest.raises(RuntimeError, match="push a complete set"):
        engine.token_logprobs(chat_prompts[:1], [[5, 6]])
    engine.load_weight_buckets([to_wire(named)])
    prompt, response = chat_prompts[0], chat_prompts[1][2:12]
    [engine_lp] = engine.token_logprobs([prompt], [response])
    assert max_abs_diff(engine_lp, hf_token_logprobs(hf_model, prompt, response)) < TOL
