"""The NCCL backend's control flow with Ray actors that stand in for learner rank 0 and
an engine (no GPU here): a broadcast that never finishes stops the push within
cluster.sync_timeout_s with an error naming it, and the blocked members are stopped."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import pytest
import ray.cloudpickle

from cpe.weight_sync.backends import NcclBroadcastSync, SyncCheck, WeightSyncFailed

pytestmark = pytest.mark.timeout(300)
# The fakes below travel to the workers by value: this test module is not importable there.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class FakeRankZero:
    def __init__(self) -> None:
        self.hang, self.inits = True, 0

    def rendezvous_address(self) -> tuple[str, int]:
        return "127.0.0.1", 29999

    def init_weight_sender(self, address: str, port: int, world: int) -> None:
        self.inits += 1

    def weight_metas(self) -> list:
        return [("w", "float32", [2, 3])]

    def broadcast_weights(self, bucket_mb: int) -> None:
        if self.hang:  # a peer that never joins the collective
            time.sleep(3600)

    def set_hang(self, hang: bool) -> None:
        self.hang = hang

    def init_count(self) -> int:
        return self.inits


class FakeEngine:
    def init_weight_transfer(self, **info) -> None:
        pass

    def receive_weights(self, metas: list, version: int) -> None:
        pass


@dataclass
class Learners:
    policy: list


@dataclass
class Engines:
    actors: list


def test_a_hung_broadcast_times_out_and_stops_the_group_within_the_timeout(ray_session):
    ray = ray_session
    rank0 = ray.remote(num_cpus=0)(FakeRankZero).remote()  # one call at a time, as ranks
    engine = ray.remote(num_cpus=0)(FakeEngine).remote()
    sync = NcclBroadcastSync(
        Learners([rank0]), Engines([engine]), SyncCheck([], 0, 0), timeout_s=2.0
    )
    started = time.time()
    with pytest.raises(WeightSyncFailed, match=r"no answer within cluster.sync_timeout_s=2s"):
        sync.push(1)
    assert time.time() - started < 30
    assert sync._ready is False  # the broken group is never trusted again
    # The blocked members are gone, so nothing waits behind them (the run's shutdown).
    for actor in (rank0, engine):
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(actor.__ray_ready__.remote(), timeout=60)


def test_a_healthy_push_sends_the_metadata_size(ray_session):
    ray = ray_session
    rank0 = ray.remote(num_cpus=0)(FakeRankZero).remote()
    ray.get(rank0.set_hang.remote(False))
    engine = ray.remote(num_cpus=0)(FakeEngine).remote()
    sync = NcclBroadcastSync(Learners([rank0]), Engines([engine]), SyncCheck([], 0, 0))
    assert sync.push(1)["sync/mb"] == 24 / 2**20  # one 2 x 3 float32 tensor
    assert sync.push(2)["sync/mb"] == 24 / 2**20
    assert ray.get(rank0.init_count.remote()) == 1  # the group is built once
    ray.kill(rank0)
    ray.kill(engine)
