"""Actors on the numbered slots of a placement pool, rebuilt where one dies.

The rollout engines, the GRM engines and the Bradley-Terry scorers are all served this
way (``cpe.rollout.pool.EnginePool``, ``cpe.reward.bt_backend.BTPool``): work is split
over the slots, and a slot whose actor is found dead gets a new actor on the same
bundle, brought up to date, and its share of the call issued again.

We do not use Ray's own ``max_restarts``/``max_task_retries``: Ray would re-run the
call on the restarted actor before anyone loaded the current policy weights into it,
i.e. sample from the base model, and a restart without task retries still needs all of
the above. Re-issuing a call gives the same output: every request is seeded by (step,
prompt tokens), not by the actor that serves it, and the scorers are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cpe import failpoints
from cpe.cluster.faults import FaultLog, actor_died


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


class ActorSlots:
    """``actors``: one Ray actor handle per slot. ``get`` resolves a list of object refs
    (``ray.get`` unless a test passes a stand-in).

    ``start(i)`` places a new actor on slot ``i``'s bundle; ``bring_up([i])`` (set by the
    owner of the weights; none for fixed-weight actors) loads the current weights into
    it. At most ``restarts`` rebuilds per slot and call; each is a WARNING and counts in
    ``faults`` (the step's ``faults/engine_restarts``).
    """

    kind = "actor"  # how the warnings call one slot's actor ("grm scorer 0")
    none_given = "needs at least one actor"  # the error for an empty pool

    def __init__(
        self,
        actors: Sequence[Any],
        get: Callable[[list[Any]], list[Any]] | None = None,
        *,
        start: Callable[[int], Any] | None = None,
        restarts: int = 0,
        name: str = "pool",
        faults: FaultLog | None = None,
        died: Callable[[BaseException], bool] = actor_died,
        kill: Callable[[Any], None] | None = None,
    ):
        if not actors:
            raise ValueError(self.none_given)
        self.actors = list(actors)
        self._get = get or _ray_get
        self.start, self.restarts, self.name = start, restarts, name
        self.faults = faults or FaultLog()
        self.bring_up: Callable[[list[int]], Any] | None = None
        # Set when the feed of new weights cannot reach a rebuilt actor: a death then stops.
        self.rebuild_refusal: str | None = None
        self._died, self._kill = died, kill or _ray_kill
        self._bringing_up = False

    def __len__(self) -> int:
        return len(self.actors)

    def _chunks(self, n_items: int) -> list[tuple[int, tuple[int, int]]]:
        """``(slot, (start, end))`` for each slot's contiguous share of ``n_items``;
        slots with nothing to do are skipped, not called with an empty list."""
        bounds = split_contiguous(n_items, len(self.actors))
        return [(i, ab) for i, ab in enumerate(bounds) if ab[1] > ab[0]]

    def _on_each(
        self,
        what: str,
        calls: list[tuple[int, Callable[[Any], list[Any]]]],
        point: str | None = None,
    ) -> list:
        """``call(actor)`` on slot ``i`` for each ``(i, call)``; the value of each call's
        last ref, in call order. Actors found dead are rebuilt and their calls re-issued.
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
        # While bringing a rebuilt actor up, a death belongs to the restart in progress
        # (and its budget), not to a nested one.
        return self.start is not None and not self._bringing_up and left > 0 and self._died(exc)

    def _revive(self, i: int, what: str, cause: BaseException, left: dict[int, int]) -> None:
        """A new actor on slot ``i``, brought to the current weights."""
        label = f"{self.name} {self.kind} {i}"
        if self.rebuild_refusal:
            raise RuntimeError(f"{label} died during {what}: {self.rebuild_refusal}")
        while True:
            left[i] -= 1
            self._kill(self.actors[i])  # a merely unreachable actor would keep the bundle
            self.actors[i] = self.start(i)
            self.faults.engine_restarted(label, what, self.restarts - left[i], self.restarts, cause)
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
