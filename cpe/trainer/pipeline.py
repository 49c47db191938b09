"""CPE experience with the rollout and GRM pools working at the same time.

The step's prompts are cut into ``trainer.pipeline_chunks`` chunks, and each chunk runs
generate -> critique -> edit -> score on its own as soon as the pool it needs is free:
while the GRM critiques chunk 1, the rollout engines already generate chunk 2, and so on.
One thread per pool issues that pool's calls in chunk order, so a pool (and the GRM
scorer's counters) is only ever used by one thread. Sampling seeds depend on the step
and the prompt tokens, not on batch composition, so the samples, scores and selected
edits are exactly those of :class:`CPEMaker` (tested); only the timing changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext

from cpe.cluster.slots import split_contiguous
from cpe.data.records import Record
from cpe.trainer.experience import Experience, Sample
from cpe.trainer.makers import CPEMaker, _items


class _NoTimer:
    """The chains' phases overlap, so they are not timed one by one."""

    def __call__(self, phase: str):
        return nullcontext()


class PipelinedCPEMaker(CPEMaker):
    def __init__(self, *args, chunks: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        if chunks < 2:
            raise ValueError(f"a pipeline needs >= 2 chunks, got {chunks}")
        self.chunks = chunks
        self.step_timer, self.timer = self.timer, _NoTimer()

    def make(self, records: Sequence[Record], step: int) -> Experience:
        self.grm.reset_metrics()
        bounds = [(a, b) for a, b in split_contiguous(len(records), self.chunks) if b > a]
        with self.step_timer("pipeline"), _pool_threads() as (rollout, grm):
            originals = [
                rollout.submit(self.generate_originals, records[a:b], step) for a, b in bounds
            ]
            critiques = [grm.submit(self._critique, f) for f in originals]
            edits = [
                rollout.submit(self._edits, o, c, step)
                for o, c in zip(originals, critiques, strict=True)
            ]
            scored = [
                grm.submit(self._score, o, c, e)
                for o, c, e in zip(originals, critiques, edits, strict=True)
            ]
            for future in scored:
                future.result()
            parts = [(o.result(), e.result()) for o, e in zip(originals, edits, strict=True)]
        return self.experience(*_renumbered(parts, [a for a, _ in bounds]))

    def _critique(self, originals: Future) -> list:
        return self.grm.critique(_items(originals.result()))

    def _edits(self, originals: Future, critiques: Future, step: int) -> list[Sample]:
        return self.generate_edits(originals.result(), critiques.result(), step)

    def _score(self, originals: Future, critiques: Future, edits: Future) -> None:
        self.score_pairs(originals.result(), critiques.result(), edits.result())


@contextmanager
def _pool_threads():
    """One thread per pool. On an error, chunks still queued are dropped, not run (a
    running call that waits on a dropped one stops too)."""
    rollout, grm = ThreadPoolExecutor(1), ThreadPoolExecutor(1)
    try:
        yield rollout, grm
    finally:
        for executor in (rollout, grm):
            executor.shutdown(wait=True, cancel_futures=True)


def _renumbered(
    parts: list[tuple[list[Sample], list[Sample]]], first_records: list[int]
) -> tuple[list[Sample], list[Sample]]:
    """Chunk-local group and pair ids made step-wide, as one call over all prompts gives."""
    originals, edits = [], []
    for (chunk_originals, chunk_edits), group_offset in zip(parts, first_records, strict=True):
        pair_offset = len(originals)
        for sample in chunk_originals + chunk_edits:
            sample.group_id += group_offset
            sample.pair_id += pair_offset
        originals += chunk_originals
        edits += chunk_edits
    return originals, edits


# algorithm.mode -> its pipelined maker (trainer.pipeline_chunks > 1)
PIPELINED_MAKERS = {"cpe": PipelinedCPEMaker}
