"""Pure parts of cpe.rollout: pool chunking and output conversion (no Ray, no vLLM)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cpe.cluster.slots import split_contiguous
from cpe.rollout import vllm_adapter as va
from cpe.rollout.pool import EnginePool
from cpe.types import Generation, SamplingSpec


@pytest.mark.parametrize(
    "n_items,n_parts,expected",
    [
        (5, 2, [(0, 3), (3, 5)]),
        (4, 4, [(0, 1), (1, 2), (2, 3), (3, 4)]),
        (1, 3, [(0, 1), (1, 1), (1, 1)]),
        (0, 2, [(0, 0), (0, 0)]),
    ],
)
def test_split_contiguous(n_items, n_parts, expected):
    assert split_contiguous(n_items, n_parts) == expected


class _Method:
    def __init__(self, fn):
        self.remote = fn


class _FakeEngine:
    """Stands in for a Ray actor handle: ``.method.remote(...)`` returns the value."""

    def __init__(self, tag: str):
        self.tag, self.calls = tag, []
        self.generate = _Method(self._generate)
        self.update_weights = _Method(lambda bucket: self.calls.append(("update", bucket)))
        self.finish_weight_update = _Method(lambda version: {"tag": tag, "version": version})

    def _generate(self, prompts, spec):
        self.calls.append(("generate", prompts))
        return [[f"{self.tag}:{p[0]}"] * spec.n for p in prompts]


def _identity_get(values):
    return values


def test_pool_scatters_contiguous_chunks_and_keeps_order():
    engines = [_FakeEngine("a"), _FakeEngine("b"), _FakeEngine("c")]
    pool = EnginePool(engines, get=_identity_get)
    out = pool.generate([[i] for i in range(4)], SamplingSpec(n=2))
    assert out == [["a:0"] * 2, ["a:1"] * 2, ["b:2"] * 2, ["c:3"] * 2]
    assert pool.generate([[7]], SamplingSpec()) == [["a:7"]]
    assert engines[1].calls == [("generate", [[2]])]  # idle engines are not called


def test_pool_sends_every_bucket_to_every_engine_then_finishes():
    engines = [_FakeEngine("a"), _FakeEngine("b")]
    infos = EnginePool(engines, get=_identity_get).update_weights(["b1", "b2"], version=4)
    assert infos == [{"tag": "a", "version": 4}, {"tag": "b", "version": 4}]
    for engine in engines:
        assert engine.calls == [("update", "b1"), ("update", "b2")]


def _logprob(value):
    return SimpleNamespace(logprob=value)


def test_to_generations_reads_sampled_token_logprobs():
    completion = SimpleNamespace(
        token_ids=[5, 9],
        text="hi",
        logprobs=[{5: _logprob(-0.5), 1: _logprob(-0.1)}, {9: _logprob(-2.0)}],
        finish_reason="stop",
    )
    unfinished = SimpleNamespace(token_ids=[3], text="x", logprobs=None, finish_reason=None)
    request = SimpleNamespace(prompt_token_ids=[1, 2], outputs=[completion, unfinished])
    [[first, second]] = va.to_generations([request])
    assert first == Generation([1, 2], [5, 9], "hi", [-0.5, -2.0], "stop")
    assert second.logprobs == [] and second.finish_reason == "length"
    assert first.top_logprobs == []  # alternatives only when asked for
    [[first, _]] = va.to_generations([request], top=True)
    assert first.top_logprobs == [{5: -0.5, 1: -0.1}, {9: -2.0}]


def test_prompt_token_logprobs_start_at_the_response():
    request = SimpleNamespace(
        prompt_token_ids=[1, 2, 3, 4],
        prompt_logprobs=[None, {2: _logprob(-1.0)}, {3: _logprob(-2.0)}, {4: _logprob(-3.0)}],
    )
    assert va.prompt_token_logprobs(request, 2) == [-2.0, -3.0]
