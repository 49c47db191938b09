"""Several engine actors behind one object: prompts are split into contiguous chunks,
one per engine, and the results are concatenated back in prompt order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cpe import failpoints
from cpe.cluster.faults import FaultLog, actor_died
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
    object refs (``ray.get`` unless a test passes a stand-in).

    An engine whose process dies is rebuilt by the pool itself: ``start(i)`` starts a new
    actor on slot ``i``'s bundle, ``bring_up([i])`` (set by the owner of the weights;
    none for fixed-weight engines such as the GRM's) loads the current weights into it,
    and the failed call is issued again, at most ``restarts`` times per engine and call.
    We do not use Ray's own ``max_restarts``/``max_task_retries``: Ray would re-run the
    call on the restarted actor before anyone loaded the current policy weights into
    it, i.e. sample from the base model, and a restart without task retries still needs
    all of the above. Re-issuing a call gives the same output, since every request is
    seeded by (step, prompt tokens) and not by the engine that serves it.
    """

    def __init__(
        self,
        actors: Sequence[Any],
        get: Callable[[list[Any]], list[Any]] | None = None,
        *,
        start: Callable[[int], Any] | None = None,
        restarts: int = 0,
        name: str = "engine",
        faults: FaultLog | None = None,
        died: Callable[[BaseException], bool] = actor_died,
        kill: Callable[[Any], None] | None = None,
    ):
        if not actors:
            raise ValueError("EnginePool needs at least one engine actor")
        self.actors = list(actors)
        self._get = get or _ray_get
        self.start, self.restarts, self.name = start, restarts, name
        self.faults = faults or FaultLog()
        self.bring_up: Callable[[list[int]], Any] | None = None
        # Set when the engines' feed cannot reach a rebuilt engine: a death then stops here.
        self.rebuild_refusal: str | None = None
        self._died, self._kill = died, kill or _ray_kill
        self._bringing_up = False

    def __len__(self) -> int:
        return len(self.actors)

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

    def _chunks(self, n_items: int) -> list[tuple[int, tuple[int, int]]]:
        # Engines with nothing to do are skipped, not called with an empty list.
        bounds = split_contiguous(n_items, len(self.actors))
        return [(i, ab) for i, ab in enumerate(bounds) if ab[1] > ab[0]]

    def _on_each(
        self,
        what: str,
        calls: list[tuple[int, Callable[[Any], list[Any]]]],
        point: str | None = None,
    ) -> list:
        """``call(actor)`` on engine ``i`` for each ``(i, call)``; the value of each call's
        last ref, in call order. Engines found dead are rebuilt and their calls re-issued.
        ``point``: the fail point (cpe.failpoints) reached while the calls are in flight."""
        results: dict[int, Any] = {}
        left = {i: self.restarts for i, _ in calls}
        todo = dict(calls)
        while todo:
            submitted = {i: call(self.actors[i]) for i, call in todo.items()}
            if point:
                failpoints.point(point)
            dead: dict[int, BaseException] = {}
            for i, refs in submitted.items():
                try:
                    results[i] = self._get(refs)[-1]
                except Exception as exc:
                    if not self._may_restart(exc, left[i]):
                        raise
                    dead[i] = exc
            for i, cause in dead.items():
                self._revive(i, what, cause, left)
            todo = {i: todo[i] for i in dead}
        return [results[i] for i, _ in calls]

    def _may_restart(self, exc: BaseException, left: int) -> bool:
        # While bringing a rebuilt engine up, a death belongs to the restart in progress
        # (and its budget), not to a nested one.
        return self.start is not None and not self._bringing_up and left > 0 and self._died(exc)

    def _revive(self, i: int, what: str, cause: BaseException, left: dict[int, int]) -> None:
        """A new engine on slot ``i``, brought to the current weights."""
        if self.rebuild_refusal:
            raise RuntimeError(f"{self.name} engine {i} died during {what}: {self.rebuild_refusal}")
        while True:
            left[i] -= 1
            self._kill(self.actors[i])  # a merely unreachable actor would keep the bundle
            self.actors[i] = self.start(i)
            restart = self.restarts - left[i]
            self.faults.engine_restarted(
                f"{self.name} engine {i}", what, restart, self.restarts, cause
            )
            try:
                self._bring_up(i)
                return
            except Exception as exc:
                if not (self._died(exc) and left[i] > 0):
                    raise
                cause = exc

    def _bring_up(self, i: int) -> None:
        if self.bring_up is None:
            return
        self._bringing_up = True
        try:
            self.bring_up([i])
        finally:
            self._bringing_up = False


def _ray_get(refs: list[Any]) -> list[Any]:
    import ray

    return ray.get(refs)


def _ray_kill(actor: Any) -> None:
    import ray

    ray.kill(actor, no_restart=True)


def _concat(parts: list[list[Any]]) -> list[Any]:
    return [item for part in parts for item in part]
