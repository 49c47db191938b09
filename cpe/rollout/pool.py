"""Several engine actors behind one object: prompts are split into contiguous chunks,
one per engine, and the results are concatenated back in prompt order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cpe import failpoints
from cpe.types import Generation, SamplingSpec


def split_contiguous(n_items: int, n_parts: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges covering ``range(n_items)``; sizes differ by at most one."""
    if n_parts < 1:
        raise ValueError("need at least one part")
    base, extra = divmod(n_items, n_parts)
    bounds, start = [], 0
    for i in range(n_parts):
        end = start + base + (1 if i < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


class EnginePool:
    """``actors``: Ray actor handles of ``VLLMEngine``. ``get`` resolves a list of
    object refs (``ray.get`` unless a test passes a stand-in)."""

    def __init__(self, actors: Sequence[Any], get: Callable[[list[Any]], list[Any]] | None = None):
        if not actors:
            raise ValueError("EnginePool needs at least one engine actor")
        self.actors = list(actors)
        self._get = get or _ray_get

    def __len__(self) -> int:
        return len(self.actors)

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], spec: SamplingSpec
    ) -> list[list[Generation]]:
        refs = [
            actor.generate.remote(list(prompt_ids[a:b]), spec)
            for actor, (a, b) in self._chunks(len(prompt_ids))
        ]
        failpoints.point("generate")
        return _concat(self._get(refs))

    def token_logprobs(
        self, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]]
    ) -> list[list[float]]:
        if len(prompt_ids) != len(response_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(response_ids)} responses")
        refs = [
            actor.token_logprobs.remote(list(prompt_ids[a:b]), list(response_ids[a:b]))
            for actor, (a, b) in self._chunks(len(prompt_ids))
        ]
        return _concat(self._get(refs))

    def update_weights(self, bucket_refs: Sequence[Any], version: int | None = None) -> list[dict]:
        """Push every bucket (ObjectRefs or lists of (name, tensor)) to every engine.

        Ray resolves a top-level ObjectRef argument inside the actor, so a bucket put
        once in the object store is read by all engines without copies through here.
        Calls to one actor run in submission order, so all buckets are submitted
        before waiting; a failed bucket surfaces from the first ``ray.get``.
        """
        loads = [a.update_weights.remote(ref) for ref in bucket_refs for a in self.actors]
        finishes = [a.finish_weight_update.remote(version) for a in self.actors]
        self._get(loads)
        return self._get(finishes)

    def load_weight_buckets(self, buckets_ref: Any, version: int | None = None) -> list[dict]:
        """Every engine loads one stored list of buckets (e.g. a learner's export
        ObjectRef, resolved inside each actor) and finishes the update."""
        return self._get([a.load_weight_buckets.remote(buckets_ref, version) for a in self.actors])

    def load_adapter(self, files_ref: Any, version: int) -> list[dict]:
        """Every engine serves the LoRA adapter in ``files_ref`` (a learner's
        ``export_adapter`` ObjectRef, resolved inside each actor) from now on."""
        return self._get([a.load_adapter.remote(files_ref, version) for a in self.actors])

    def health(self) -> list[dict]:
        return self._get([a.health.remote() for a in self.actors])

    def shutdown(self) -> None:
        self._get([a.shutdown.remote() for a in self.actors])

    def _chunks(self, n_items: int) -> list[tuple[Any, tuple[int, int]]]:
        # Engines with nothing to do are skipped, not called with an empty list.
        bounds = split_contiguous(n_items, len(self.actors))
        return [(actor, ab) for actor, ab in zip(self.actors, bounds, strict=True) if ab[1] > ab[0]]


def _ray_get(refs: list[Any]) -> list[Any]:
    import ray

    return ray.get(refs)


def _concat(parts: list[list[Any]]) -> list[Any]:
    return [item for part in parts for item in part]
