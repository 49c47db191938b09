"""Several engine actors behind one object: prompts are split into contiguous chunks,
one per engine, and the results are concatenated back in prompt order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cpe.cluster.slots import ActorSlots
from cpe.types import Generation, SamplingSpec


class EnginePool(ActorSlots):
    """``actors``: Ray actor handles of ``VLLMEngine``, one per slot of the pool. An
    engine whose process dies is rebuilt on its slot by :class:`ActorSlots` (the
    rollout engines are brought to the current policy by the weight sync's
    ``bring_up``), and its share of the call is issued again."""

    kind = "engine"
    none_given = "EnginePool needs at least one engine actor"

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], spec: SamplingSpec
    ) -> list[list[Generation]]:
        calls = [
            (i, lambda actor, a=a, b=b: [actor.generate.remote(list(prompt_ids[a:b]), spec)])
            for i, (a, b) in self._chunks(len(prompt_ids))
        ]
        return _concat(self._on_each("generate", calls, point="generate"))

    def token_logprobs(
        self, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]]
    ) -> list[list[float]]:
        if len(prompt_ids) != len(response_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(response_ids)} responses")
        calls = [
            (
                i,
                lambda actor, a=a, b=b: [
                    actor.token_logprobs.remote(list(prompt_ids[a:b]), list(response_ids[a:b]))
                ],
            )
            for i, (a, b) in self._chunks(len(prompt_ids))
        ]
        return _concat(self._on_each("token_logprobs", calls))

    def update_weights(self, bucket_refs: Sequence[Any], version: int | None = None) -> list[dict]:
        """Push every bucket (ObjectRefs or lists of (name, tensor)) to every engine.

        Ray resolves a top-level ObjectRef argument inside the actor, so a bucket put
        once in the object store is read by all engines without copies through here.
        Calls to one actor run in submission order, so all of an engine's buckets and
        its finish are submitted before waiting; a failed bucket surfaces at once.
        """

        def load(actor: Any) -> list[Any]:
            loads = [actor.update_weights.remote(ref) for ref in bucket_refs]
            return [*loads, actor.finish_weight_update.remote(version)]

        return self._on_each("update_weights", [(i, load) for i in range(len(self.actors))])

    def load_weight_buckets(
        self, buckets_ref: Any, version: int | None = None, engines: Sequence[int] | None = None
    ) -> list[dict]:
        """Every engine (or those in ``engines``) loads one stored list of buckets (e.g. a
        learner's export ObjectRef, resolved inside each actor) and finishes the update."""
        calls = [
            (i, lambda actor: [actor.load_weight_buckets.remote(buckets_ref, version)])
            for i in self._indices(engines)
        ]
        return self._on_each("load_weight_buckets", calls)

    def load_adapter(
        self, files_ref: Any, version: int, engines: Sequence[int] | None = None
    ) -> list[dict]:
        """Every engine (or those in ``engines``) serves the LoRA adapter in ``files_ref``
        (a learner's ``export_adapter`` ObjectRef, resolved inside each actor) from now on."""
        calls = [
            (i, lambda actor: [actor.load_adapter.remote(files_ref, version)])
            for i in self._indices(engines)
        ]
        return self._on_each("load_adapter", calls)

    def health(self) -> list[dict]:
        return self._get([a.health.remote() for a in self.actors])

    def shutdown(self) -> None:
        self._get([a.shutdown.remote() for a in self.actors])

    def _indices(self, engines: Sequence[int] | None) -> list[int]:
        return list(range(len(self.actors))) if engines is None else list(engines)


def _concat(parts: list[list[Any]]) -> list[Any]:
    return [item for part in parts for item in part]
