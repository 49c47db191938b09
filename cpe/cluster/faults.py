"""Actor faults a run survives or stops on: which engine was rebuilt, at which step, and
how many such restarts a step had (``faults/engine_restarts`` in its metrics row)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("cpe.faults")


def actor_died(exc: BaseException) -> bool:
    """True when a call failed because the actor it went to is gone (its process died or
    cannot be reached), not because the call raised. A task that itself failed on
    another actor's death raises ``RayTaskError(ActorDiedError)``, an instance of both
    classes: that actor is alive, so it is excluded."""
    from ray.exceptions import RayActorError, RayTaskError

    return isinstance(exc, RayActorError) and not isinstance(exc, RayTaskError)


class FaultLog:
    """Actor restarts of the step in progress. ``step`` labels the warnings; the driver
    sets it as each step starts and takes the count into the step's row with
    :meth:`pop`. Pools on several threads (pipelined makers) report into one log."""

    def __init__(self, step: int | None = None) -> None:
        self.step = step
        self._restarts = 0
        self._lock = threading.Lock()

    def engine_restarted(
        self, engine: str, call: str, restart: int, limit: int, cause: BaseException
    ) -> None:
        with self._lock:
            self._restarts += 1
        at = f" at step {self.step}" if self.step is not None else ""
        log.warning(
            "%s died during %s%s (%s); rebuilt on its bundle, call re-issued "
            "(restart %d of at most %d for this call, cluster.engine_restarts)",
            engine,
            call,
            at,
            type(cause).__name__,
            restart,
            limit,
        )

    def pop(self) -> dict[str, float]:
        """The restarts since the last pop, as a metrics entry; the count starts again."""
        with self._lock:
            count, self._restarts = self._restarts, 0
        return {"faults/engine_restarts": float(count)}
