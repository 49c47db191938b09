"""ObjectStoreSync over a fake learner group and a fake rollout pool: the transfer, and
the engine-vs-learner log-prob check after it (hand-computed gaps)."""

from __future__ import annotations

import pytest
import torch
from unit.fakes import FakeLearners, FakeRollout

from cpe.types import Generation
from cpe.weight_sync.backends import (
    WEIGHT_SYNC_BACKENDS,
    AdapterSync,
    ObjectStoreSync,
    SyncCheck,
    WeightSyncFailed,
    engine_load_metrics,
    metas_bytes,
)

PAD = 0
PROMPTS = [[1, 2], [5], [7, 8, 9]]

# Greedy replies per prompt (first token id = the prompt's first id): token ids and the
# engine's log-probs. The third prompt got no token: it is left out of the check.
REPLIES = {
    1: Generation([1, 2], [3, 4], "ab", logprobs=[-0.5, -1.25], finish_reason="length"),
    5: Generation([5], [6], "c", logprobs=[-1.0], finish_reason="length"),
    7: Generation([7, 8, 9], [], "", logprobs=[], finish_reason="stop"),
}


def reply(prompt: str, index: int) -> Generation:
    return REPLIES[ord(prompt[0])]  # FakeRollout hands over the prompt as chars


def by_position(batch, temperature):
    """The learner's log-prob of token ``i`` is -0.1 * i: every position differs."""
    cols = torch.arange(batch.input_ids.shape[1], dtype=torch.float32)
    return (-0.1 * cols).expand(batch.input_ids.shape).clone()


def sync(tokens=4, prompts=PROMPTS, replies=reply):
    log: list = []
    learners = FakeLearners(log, logprob_fn=by_position, export="rank0-buckets")
    engines = FakeRollout(replies, log=log)
    return ObjectStoreSync(learners, engines, SyncCheck(prompts, tokens, PAD), bucket_mb=16), log


def test_push_moves_the_learners_export_into_the_engines_then_checks():
    backend, log = sync()
    metrics = backend.push(3)

    assert backend.engines.loads == [("rank0-buckets", 3)]  # the one ref, with the version
    assert log[:2] == [("export_ref", 16), ("load_weight_buckets", 3)]  # before the check

    # the check: greedy (T=0) tokens from the engines, learner log-probs at T=1
    (call,) = backend.engines.calls
    assert call.prompts == PROMPTS
    assert (call.spec.n, call.spec.temperature, call.spec.max_tokens, call.spec.logprobs) == (
        1,
        0.0,
        4,
        True,
    )
    ((batch, temperature),) = backend.learners.logprob_inputs
    assert temperature == 1.0
    assert batch.input_ids.tolist() == [[1, 2, 3, 4], [5, 6, PAD, PAD]]  # empty reply dropped
    assert batch.response_mask.tolist() == [[0, 0, 1, 1], [0, 1, 0, 0]]

    # learner at token positions: row 0 -> -0.2, -0.3; row 1 -> -0.1
    # gaps |learner - engine|: |-0.2 + 0.5| = 0.3, |-0.3 + 1.25| = 0.95, |-0.1 + 1.0| = 0.9
    timed = {"sync/transfer_s", "sync/check_s"}
    gaps = {"sync/logprob_gap_max", "sync/logprob_gap_mean"}
    assert set(metrics) == timed | gaps
    assert all(metrics[k] >= 0 for k in timed)
    assert metrics["sync/logprob_gap_max"] == pytest.approx(0.95)
    assert metrics["sync/logprob_gap_mean"] == pytest.approx((0.3 + 0.95 + 0.9) / 3)


def test_every_push_carries_its_own_version():
    backend, _ = sync(tokens=0)
    for version in (1, 2, 5):
        backend.push(version)
    assert backend.engines.loads == [("rank0-buckets", v) for v in (1, 2, 5)]


@pytest.mark.parametrize(("tokens", "prompts"), [(0, PROMPTS), (4, [])])
def test_a_disabled_check_runs_nothing(tokens, prompts):
    backend, log = sync(tokens=tokens, prompts=prompts)
    assert set(backend.push(1)) == {"sync/transfer_s"}
    assert log == [("export_ref", 16), ("load_weight_buckets", 1)]
    assert backend.engines.calls == [] and backend.learners.logprob_inputs == []


def test_empty_generations_give_no_metrics():
    backend, _ = sync(prompts=[[7, 8, 9]])
    assert set(backend.push(1)) == {"sync/transfer_s", "sync/check_s"}
    assert len(backend.engines.calls) == 1  # asked, but nothing came back to compare
    assert backend.learners.logprob_inputs == []


def test_the_registry_maps_object_store_to_this_backend():
    assert WEIGHT_SYNC_BACKENDS["object_store"] is ObjectStoreSync


def test_engine_load_metrics_report_one_engines_mib_and_the_slowest_engine():
    loads = [
        {"version": 2, "bytes": 3 * 2**20, "load_s": 0.5, "finish_s": 0.25},
        {"version": 2, "bytes": 3 * 2**20, "load_s": 0.75, "finish_s": 0.125},
    ]
    assert engine_load_metrics(loads) == {
        "sync/mb": 3.0,
        "sync/engine_load_s": 0.75,
        "sync/engine_finish_s": 0.25,
    }
    assert engine_load_metrics([{"version": 1}]) == {}


def test_bandwidth_is_mib_over_the_transfer_time():
    class Timed(ObjectStoreSync):
        def transfer(self, version):
            return {"sync/mb": 64.0}

    learners = FakeLearners([], logprob_fn=by_position, export="x")
    metrics = Timed(learners, FakeRollout(reply, log=[]), SyncCheck([], 0, PAD)).push(1)
    assert metrics["sync/mb_per_s"] == pytest.approx(64.0 / metrics["sync/transfer_s"])


def test_metas_bytes_counts_every_element_at_its_dtype():
    # 4x3 fp32 = 48 bytes, 5 bf16 = 10 bytes, a scalar fp32 = 4 bytes
    assert (
        metas_bytes([("a", "float32", [4, 3]), ("b", "bfloat16", [5]), ("c", "float32", [])]) == 62
    )


def test_adapter_sync_moves_rank0s_adapter_files_into_every_engine():
    log: list = []
    learners = FakeLearners(log, logprob_fn=by_position)
    engines = FakeRollout(reply, log=log)
    backend = WEIGHT_SYNC_BACKENDS["adapter"](learners, engines, SyncCheck(PROMPTS, 0, PAD))
    assert isinstance(backend, AdapterSync)
    metrics = backend.push(7)
    assert log == [("export_adapter_ref",), ("load_adapter", 7)]
    assert engines.loads == [("rank0-adapter", 7)]
    assert metrics["sync/mb"] == 3.0  # one engine's share; the slowest engine's load:
    assert metrics["sync/engine_load_s"] == 0.5


def test_a_failed_transfer_stops_with_the_backend_and_version_named():
    class Broken(FakeRollout):
        def load_weight_buckets(self, buckets_ref, version=None):
            raise ConnectionError("engine 0 died")

    log: list = []
    backend = ObjectStoreSync(FakeLearners(log), Broken(reply, log=log), SyncCheck([], 0, PAD))
    with pytest.raises(WeightSyncFailed) as info:
        backend.push(4)
    assert str(info.value) == (
        "weight sync (cluster.weight_sync=object_store) of version 4 failed after 0s: engine 0 died"
    )
    assert isinstance(info.value.__cause__, ConnectionError)
