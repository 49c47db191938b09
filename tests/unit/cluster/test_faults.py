"""Which Ray errors mean "the actor is gone" (cpe.cluster.faults.actor_died)."""

from __future__ import annotations

from ray.exceptions import ActorDiedError, ActorUnavailableError, RayTaskError

from cpe.cluster.faults import FaultLog, actor_died


def test_a_dead_or_unreachable_actor_counts_but_a_task_that_saw_another_actor_die_does_not():
    assert actor_died(ActorDiedError())
    assert actor_died(ActorUnavailableError("gone", None))
    # Ray raises a task's own failure as an instance of its cause's class too.
    task_error = RayTaskError("generate", "traceback", ActorDiedError()).as_instanceof_cause()
    assert isinstance(task_error, ActorDiedError)
    assert not actor_died(task_error)
    assert not actor_died(RuntimeError("engine refused"))


def test_restarts_are_counted_until_popped():
    faults = FaultLog(step=2)
    faults.engine_restarted("grm engine 0", "generate", 1, 2, ActorDiedError())
    faults.engine_restarted("rollout engine 1", "generate", 1, 2, ActorDiedError())
    assert faults.pop() == {"faults/engine_restarts": 2.0}
    assert faults.pop() == {"faults/engine_restarts": 0.0}
