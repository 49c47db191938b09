"""Fault injection points, for the tests that prove a run survives a crash anywhere.

``CPE_FAILPOINT=<point>:<step>`` (e.g. ``update:3``) SIGKILLs this process when it reaches
``point`` during step ``step``: the same death as an OOM kill or a lost node, but at a
chosen place instead of after a guessed sleep. Unset (always, outside tests), each
point is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "CPE_FAILPOINT"
#: Where a point sits: while engines generate (requests in flight), while learners
#: update (train calls in flight), between a checkpoint's state files and its marker.
POINTS = ("generate", "update", "checkpoint")
_step = 0


def at_step(step: int) -> None:
    """The driver's current step, which points are matched against."""
    global _step
    _step = step


def planned() -> tuple[str, int] | None:
    """``(point, step)`` from the environment, or None; a malformed value raises."""
    spec = os.environ.get(ENV)
    if not spec:
        return None
    name, _, step = spec.partition(":")
    if name not in POINTS or not step.isdigit():
        raise ValueError(f"{ENV}={spec!r}: expected <point>:<step> with point one of {POINTS}")
    return name, int(step)


def point(name: str) -> None:
    """Die here if ``CPE_FAILPOINT`` names this point and the current step."""
    if planned() == (name, _step):
        os.kill(os.getpid(), signal.SIGKILL)
