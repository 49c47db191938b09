"""EnginePool over fake engine actors that die: a dead engine is rebuilt on its slot,
brought to the current weights by the real ObjectStoreSync, and its call re-issued;
the budget (cluster.engine_restarts) bounds it; other errors pass through untouched.

A fake engine answers ``.method.remote(...)`` at once with its value, or with the error
Ray gives for a dead actor's call (resolved by the pool's ``get``); its outputs carry the
weight version it holds, so a call re-issued before the weights were loaded shows."""

from __future__ import annotations

import logging

import pytest
from unit.fakes import FakeLearners

from cpe.cluster.faults import FaultLog
from cpe.rollout.pool import EnginePool
from cpe.types import SamplingSpec
from cpe.weight_sync.backends import NcclBroadcastSync, ObjectStoreSync, SyncCheck


class Died(Exception):
    """The error of a call to a dead actor (Ray: ActorDiedError)."""


class Method:
    def __init__(self, engine: FakeEngine, name: str):
        self.engine, self.name = engine, name

    def remote(self, *args):
        return self.engine.call(self.name, *args)


class FakeEngine:
    def __init__(self, index: int, dies_on: tuple[str, ...] = ()):
        self.index, self.dies_on, self.version = index, set(dies_on), 0
        self.calls: list[str] = []
        for name in ("generate", "load_weight_buckets", "health", "shutdown"):
            setattr(self, name, Method(self, name))

    def call(self, name: str, *args):
        self.calls.append(name)
        if name in self.dies_on:
            return Died(f"engine {self.index} died")
        return getattr(self, f"_{name}")(*args)

    def _generate(self, prompts, spec):
        return [[f"v{self.version}:{p[0]}"] * spec.n for p in prompts]

    def _load_weight_buckets(self, buckets, version):
        self.version = version
        return {"version": version, "buckets": buckets}


def resolve(refs: list) -> list:
    for ref in refs:
        if isinstance(ref, Exception):
            raise ref
    return list(refs)


class Slots:
    """Starts engines for the pool: slot ``i``'s next engine dies on the methods given
    for it in ``deaths[i]`` (one tuple per restart), else it is healthy."""

    def __init__(self, deaths: dict[int, list[tuple[str, ...]]] | None = None):
        self.deaths = deaths or {}
        self.started: list[FakeEngine] = []

    def start(self, index: int) -> FakeEngine:
        planned = self.deaths.get(index, [])
        engine = FakeEngine(index, planned.pop(0) if planned else ())
        self.started.append(engine)
        return engine


def pool_of(engines: list[FakeEngine], slots: Slots, restarts: int = 2, sync_version: int = 3):
    faults = FaultLog(step=4)
    pool = EnginePool(
        engines,
        get=resolve,
        start=slots.start,
        restarts=restarts,
        name="rollout",
        faults=faults,
        died=lambda exc: isinstance(exc, Died),
        kill=lambda actor: None,
    )
    sync = ObjectStoreSync(FakeLearners(), pool, SyncCheck([], 0, 0))
    sync.version = sync_version  # the engines hold the policy of step 3
    for engine in engines:
        engine.version = sync_version
    pool.bring_up = sync.bring_up
    return pool, faults


PROMPTS = [[10], [11], [12], [13]]


def test_a_dead_engine_is_rebuilt_given_the_current_weights_and_its_call_reissued(caplog):
    engines = [FakeEngine(0), FakeEngine(1, dies_on=("generate",))]
    slots = Slots()
    pool, faults = pool_of(engines, slots)
    with caplog.at_level(logging.WARNING, logger="cpe.faults"):
        out = pool.generate(PROMPTS, SamplingSpec(n=2))
    # As from healthy engines at version 3: the new engine loaded it before generating.
    assert out == [[f"v3:{p[0]}"] * 2 for p in PROMPTS]
    [new] = slots.started
    assert pool.actors == [engines[0], new]
    assert new.calls == ["load_weight_buckets", "generate"]
    assert engines[0].calls == ["generate"]  # a healthy engine's chunk is not asked again
    assert faults.pop() == {"faults/engine_restarts": 1.0}
    [line] = [r.getMessage() for r in caplog.records]
    assert line.startswith("rollout engine 1 died during generate at step 4 (Died)")
    assert "restart 1 of at most 2" in line


def test_before_the_first_push_a_rebuilt_engine_needs_no_weights():
    engines = [FakeEngine(0, dies_on=("generate",))]
    slots = Slots()
    pool, _ = pool_of(engines, slots, sync_version=0)
    assert pool.generate([[5]], SamplingSpec()) == [["v0:5"]]
    assert slots.started[0].calls == ["generate"]


def test_an_engine_that_keeps_dying_stops_the_call_after_the_budget():
    engines = [FakeEngine(0, dies_on=("generate",))]
    slots = Slots({0: [("generate",), ("generate",)]})
    pool, faults = pool_of(engines, slots, restarts=2)
    with pytest.raises(Died):
        pool.generate(PROMPTS, SamplingSpec())
    assert len(slots.started) == 2
    assert faults.pop() == {"faults/engine_restarts": 2.0}


def test_the_budget_is_per_call():
    engines = [FakeEngine(0, dies_on=("generate",))]
    slots = Slots({0: [("generate",)]})
    pool, faults = pool_of(engines, slots, restarts=1)
    with pytest.raises(Died):
        pool.generate(PROMPTS, SamplingSpec())
    # The next call has its own budget: the engine that died is rebuilt again.
    assert pool.generate([[7]], SamplingSpec()) == [["v3:7"]]
    assert faults.pop() == {"faults/engine_restarts": 2.0}


def test_a_rebuilt_engine_that_dies_while_loading_the_weights_spends_the_same_budget():
    engines = [FakeEngine(0, dies_on=("generate",))]
    slots = Slots({0: [("load_weight_buckets",)]})
    pool, faults = pool_of(engines, slots, restarts=2)
    assert pool.generate([[1]], SamplingSpec()) == [["v3:1"]]
    assert [e.calls for e in slots.started] == [
        ["load_weight_buckets"],
        ["load_weight_buckets", "generate"],
    ]
    assert faults.pop() == {"faults/engine_restarts": 2.0}

    engines = [FakeEngine(0, dies_on=("generate",))]
    slots = Slots({0: [("load_weight_buckets",)]})
    pool, _ = pool_of(engines, slots, restarts=1)
    with pytest.raises(Died):  # no nested restart inside the bring-up
        pool.generate([[1]], SamplingSpec())
    assert len(slots.started) == 1


def test_a_push_that_loses_an_engine_loads_the_new_version_into_its_replacement():
    engines = [FakeEngine(0), FakeEngine(1, dies_on=("load_weight_buckets",))]
    slots = Slots()
    pool, faults = pool_of(engines, slots)
    pool.bring_up.__self__.push(4)
    assert [e.version for e in pool.actors] == [4, 4]
    assert faults.pop() == {"faults/engine_restarts": 1.0}


def test_other_errors_and_a_zero_budget_are_raised_without_a_restart():
    class Broken(FakeEngine):
        def _generate(self, prompts, spec):
            raise ValueError("bad prompt")

    slots = Slots()
    pool, _ = pool_of([Broken(0)], slots)
    with pytest.raises(ValueError, match="bad prompt"):
        pool.generate(PROMPTS, SamplingSpec())
    pool, _ = pool_of([FakeEngine(0, dies_on=("generate",))], slots, restarts=0)
    with pytest.raises(Died):
        pool.generate(PROMPTS, SamplingSpec())
    assert slots.started == []


def test_a_transport_that_cannot_feed_a_rebuilt_engine_stops_before_starting_one():
    engines = [FakeEngine(0, dies_on=("generate",))]
    slots = Slots()
    pool, faults = pool_of(engines, slots)
    pool.rebuild_refusal = NcclBroadcastSync.rebuild_refusal(None)
    with pytest.raises(RuntimeError, match="rollout engine 0 died during generate: .*nccl"):
        pool.generate(PROMPTS, SamplingSpec())
    assert slots.started == [] and faults.pop() == {"faults/engine_restarts": 0.0}
