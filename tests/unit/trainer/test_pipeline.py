"""The pipelined CPE maker: the same experience as CPEMaker, with the rollout and GRM
pools working at the same time."""

from __future__ import annotations

import time
from dataclasses import asdict

import pytest
from test_makers import ORIGINALS, build
from unit.fakes import make_records

from cpe.trainer.makers import CPEMaker
from cpe.trainer.pipeline import PipelinedCPEMaker
from cpe.trainer.timing import PhaseTimer

pytestmark = pytest.mark.unit


def pipelined(chunks, **kwargs):
    maker, rollout = build(CPEMaker, **kwargs)
    return PipelinedCPEMaker(
        maker.rollout, maker.grm, maker.prompter, maker.s, PhaseTimer(), chunks=chunks
    ), rollout


def plain(sample) -> dict:
    out = asdict(sample)
    out["record"] = sample.record.id
    return out


@pytest.mark.parametrize("chunks", [2, 3, 5])
@pytest.mark.parametrize("mode", ["two_call", "single_call"])
def test_same_samples_scores_ids_and_selection_as_the_sequential_maker(chunks, mode):
    records = make_records(len(ORIGINALS))
    expected = build(CPEMaker, mode=mode)[0].make(records, step=3)
    got = pipelined(chunks, mode=mode)[0].make(records, step=3)
    assert [plain(s) for s in got.originals] == [plain(s) for s in expected.originals]
    assert [plain(s) for s in got.edits] == [plain(s) for s in expected.edits]
    assert got.selected == expected.selected
    assert got.grm_stats == expected.grm_stats


def test_one_chunk_per_call_in_chunk_order_and_the_pools_overlap():
    maker, rollout = pipelined(3)
    busy: dict[str, list[tuple[float, float]]] = {"rollout": [], "grm": []}
    generate, call_grm = rollout.generate, maker.grm._call

    def timed(name, fn):
        def run(*args, **kwargs):
            start = time.perf_counter()
            time.sleep(0.05)  # long enough for the other pool to start meanwhile
            out = fn(*args, **kwargs)
            busy[name].append((start, time.perf_counter()))
            return out

        return run

    rollout.generate = timed("rollout", generate)
    maker.grm._call = timed("grm", call_grm)
    exp = maker.make(make_records(3), step=1)
    # 3 chunks of one prompt: 3 generations, then each chunk's edits (group 2's "mute"
    # answer got an empty critique: one edit there), in chunk order
    sizes = [(len(c.prompts), c.spec.n) for c in rollout.calls]
    assert sizes == [(1, 2)] * 3 + [(2, 1), (2, 1), (1, 1)]
    assert [s.group_id for s in exp.originals] == [0, 0, 1, 1, 2, 2]
    overlaps = [(a, b) for a in busy["rollout"] for b in busy["grm"] if a[0] < b[1] and b[0] < a[1]]
    assert overlaps, "the GRM never worked while the rollout pool did"


def test_phases_are_one_timed_pipeline():
    maker, _ = pipelined(2)
    maker.make(make_records(3), step=1)
    timings = maker.step_timer.pop()
    assert timings["time/pipeline"] > 0
    assert not {"time/generate", "time/critique", "time/edit", "time/score"} & set(timings)


def test_fewer_than_two_chunks_is_not_a_pipeline():
    maker, _ = build(CPEMaker)
    with pytest.raises(ValueError, match=">= 2 chunks"):
        PipelinedCPEMaker(maker.rollout, maker.grm, maker.prompter, maker.s, PhaseTimer(), chunks=1)


def test_a_failing_chunk_fails_the_step_and_drops_the_queued_work():
    maker, rollout = pipelined(3)
    calls = []

    def broken(items):
        calls.append(len(items))
        raise RuntimeError("GRM engine died")

    maker.grm.critique = broken
    with pytest.raises(RuntimeError, match="GRM engine died"):
        maker.make(make_records(3), step=1)
    # every edit waits on its chunk's critique: only the 3 generations reached the pool
    assert calls and [c.spec.n for c in rollout.calls] == [2, 2, 2]
