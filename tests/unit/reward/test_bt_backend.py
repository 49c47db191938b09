"""The Bradley-Terry reward backend: the scorer (in-process, no Ray) against a direct
forward of the ValueModel, micro-batching, the backend's results through GRMScorer, and
the pool's split over actors."""

from __future__ import annotations

import logging

import pytest
import torch

from cpe.cluster.faults import FaultLog
from cpe.config import GRMConfig
from cpe.data.records import Record
from cpe.models.tiny_rm import build_tiny_reward_model, tiny_value_model
from cpe.prompts import DEFAULT
from cpe.reward import GRMError, GRMResult, GRMScorer, build_grm
from cpe.reward.bt_backend import BTBackend, BTPool, BTScorer
from cpe.reward.bt_model import scored_ids

MEAN, STD = 0.5, 2.0


@pytest.fixture(scope="module")
def tiny_path():
    from cpe.models.paths import resolve_model_path

    return resolve_model_path("fixture:tiny")


@pytest.fixture(scope="module")
def rm_folder(tiny_path, tmp_path_factory):
    return build_tiny_reward_model(tmp_path_factory.mktemp("rm") / "rm", tiny_path, MEAN, STD)


@pytest.fixture(scope="module")
def rm_tokenizer(rm_folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(rm_folder))


def _pairs(tokenizer, record, answers, max_len=4096):
    return [scored_ids(tokenizer, DEFAULT, record, a, max_len) for a in answers]


ANSWERS = ["Keep the room dark.", "Sleep.", "Eat a light meal before bed and skip the coffee."]


def test_rewards_are_the_normalised_head_at_the_eos(rm_folder, tiny_path, rm_tokenizer, record):
    pairs = _pairs(rm_tokenizer, record, ANSWERS)
    rewards = BTScorer(str(rm_folder), micro_batch_rows=8).score(pairs)
    reference = tiny_value_model(tiny_path)  # the same backbone and head, not from the folder
    with torch.no_grad():
        raw = [reference(input_ids=torch.tensor([p + a])).values[0, -1] for p, a in pairs]
    assert all(a[-1] == rm_tokenizer.eos_token_id for _, a in pairs)
    assert rewards == pytest.approx([(float(r) - MEAN) / STD for r in raw], abs=1e-5)
    assert len(set(rewards)) == len(ANSWERS)  # the head reads the answers


def test_a_bias_only_head_gives_every_answer_the_same_reward(
    tiny_path, rm_tokenizer, record, tmp_path
):
    folder = build_tiny_reward_model(tmp_path / "rm", tiny_path, 1.0, 4.0, head_seed=None, bias=3.0)
    rewards = BTScorer(str(folder)).score(_pairs(rm_tokenizer, record, ANSWERS))
    assert rewards == pytest.approx([(3.0 - 1.0) / 4.0] * len(ANSWERS))


def test_padding_and_micro_batches_do_not_change_rewards(rm_folder, rm_tokenizer, record):
    answers = [*ANSWERS, "x " * 40, "A much longer answer. " * 6]
    pairs = _pairs(rm_tokenizer, record, answers)
    scorer = BTScorer(str(rm_folder), micro_batch_rows=1)
    alone = scorer.score(pairs)
    for rows in (2, 3, 16):
        scorer.micro_batch_rows = rows
        assert scorer.score(pairs) == pytest.approx(alone, abs=1e-4)
    assert scorer.score([]) == []


class StubScorer:
    def __init__(self) -> None:
        self.calls: list[list] = []

    def score(self, pairs):
        self.calls.append(list(pairs))
        return [float(len(p) + len(a)) for p, a in pairs]


def test_a_prompt_that_does_not_fit_is_invalid_not_zero(rm_tokenizer, record):
    long = Record(id="long", persona=record.persona, question="Why? " * 400)
    short_len = len(scored_ids(rm_tokenizer, DEFAULT, record, "", 4096)[0])
    stub = StubScorer()
    backend = BTBackend(stub, rm_tokenizer, max_len=short_len + 8)
    ok, bad, ok2 = backend.score([(record, "Yes."), (long, "Yes."), (record, "No.")])
    assert ok.valid and ok2.valid and ok.reward is not None and ok.judgement is None
    assert not bad.valid and bad.reward is None and "no room for an answer" in bad.error
    assert not bad.retryable
    assert len(stub.calls) == 1 and len(stub.calls[0]) == 2  # the unfit item never scored


def test_scorer_scores_once_in_both_modes_and_refuses_critiques(rm_tokenizer, record):
    for mode in ("two_call", "single_call"):
        stub = StubScorer()
        scorer = GRMScorer(BTBackend(stub, rm_tokenizer), mode=mode, retries=2)
        results = scorer.score([(record, "a"), (record, "bb")])
        assert all(r.valid and r.attempts == 1 for r in results) and len(stub.calls) == 1
        assert scorer.metrics()["grm/invalid"] == 0
    two_call = GRMScorer(BTBackend(StubScorer(), rm_tokenizer))
    with pytest.raises(GRMError, match="writes no critiques; algorithm.mode=cpe needs"):
        two_call.critique([(record, "a")])


def test_factory_builds_a_bt_backend_over_the_pool(rm_tokenizer, record):
    cfg = GRMConfig(backend="bt", max_prompt_tokens=2048)
    grm = build_grm(cfg, StubScorer(), rm_tokenizer, max_prompt_tokens=cfg.max_prompt_tokens)
    assert isinstance(grm.backend, BTBackend) and grm.backend.max_len == 2048
    with pytest.raises(GRMError, match="grm.backend='bt' needs the BT scorers"):
        build_grm(cfg, None, rm_tokenizer)


class FakeActor:
    def __init__(self, offset: float) -> None:
        self.offset = offset
        self.score = self  # actor.score.remote(...)
        self.seen: list = []

    def remote(self, pairs):
        self.seen.append(pairs)
        return [self.offset + len(a) for _, a in pairs]


def test_pool_splits_pairs_over_actors_and_keeps_order():
    actors = [FakeActor(0.0), FakeActor(100.0)]
    pool = BTPool(actors, get=lambda refs: refs)
    pairs = [([1], [0] * n) for n in range(1, 6)]
    assert pool.score(pairs) == [1, 2, 3, 104, 105]
    assert [len(a.seen[0]) for a in actors] == [3, 2]
    assert pool.score(pairs[:1]) == [1] and len(actors[1].seen) == 1  # no empty call
    with pytest.raises(ValueError, match="cluster.pools.grm.engines"):
        BTPool([])


class Died(Exception):
    """The error of a call to a dead actor (Ray: ActorDiedError)."""


class DeadActor(FakeActor):
    def remote(self, pairs):
        self.seen.append(pairs)
        return Died("scorer process gone")


def _resolve(refs: list) -> list:
    for ref in refs:
        if isinstance(ref, Exception):
            raise ref
    return refs


def test_a_dead_scorer_is_rebuilt_on_its_slot_and_only_its_chunk_scored_again(caplog):
    faults = FaultLog(step=2)
    started: list[int] = []

    def start(slot: int) -> FakeActor:
        started.append(slot)
        return FakeActor(100.0 * slot)

    dead = DeadActor(100.0)
    first = FakeActor(0.0)
    pool = BTPool(
        [first, dead],
        get=_resolve,
        start=start,
        restarts=1,
        name="grm",
        faults=faults,
        died=lambda exc: isinstance(exc, Died),
        kill=lambda actor: None,
    )
    pairs = [([1], [0] * n) for n in range(1, 5)]
    with caplog.at_level(logging.WARNING, logger="cpe.faults"):
        assert pool.score(pairs) == [1, 2, 103, 104]
    assert started == [1] and pool.actors[0] is first and len(first.seen) == 1
    assert faults.pop() == {"faults/engine_restarts": 1.0}
    assert "grm scorer 1 died during score at step 2 (Died)" in caplog.text


def test_a_scorer_that_keeps_dying_stops_the_call_after_the_budget():
    faults, started = FaultLog(step=1), []

    def start(slot: int) -> DeadActor:
        started.append(slot)
        return DeadActor(0.0)

    pool = BTPool(
        [DeadActor(0.0)],
        get=_resolve,
        start=start,
        restarts=2,
        faults=faults,
        died=lambda exc: isinstance(exc, Died),
        kill=lambda actor: None,
    )
    with pytest.raises(Died):
        pool.score([([1], [0])])
    assert started == [0, 0] and faults.pop() == {"faults/engine_restarts": 2.0}


def test_eval_score_means_skip_the_dimensions_a_scalar_model_lacks(record):
    from cpe.eval.grm_scores import _row, score_metrics

    results = BTBackend(StubScorer(), None).score([])  # no items: nothing tokenised
    assert results == []
    rows = [_row(record, r, "d") for r in (GRMResult("", None, "", 2.0, True),)]
    rows.append(_row(record, GRMResult("", None, "", None, False, error="x"), "d"))
    metrics = score_metrics(rows)
    assert metrics["grm_reward"] == 2.0 and metrics["grm_invalid"] == 1.0
    assert metrics["grm_helpfulness"] is None
