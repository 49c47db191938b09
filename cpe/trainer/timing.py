"""Wall-clock time per named phase of a step (generate, critique, edit, score, ...).

One clock runs all the time: a second inside ``with timer(phase)`` goes to that phase
(the innermost one when phases nest), every other second goes to ``other`` (the
driver's own work: building tensors, metrics, Python between calls). ``pop`` closes a
window, so a step's ``time/*`` add up to its ``time/step``; ``other`` is clocked, not
the remainder of a subtraction.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager

OTHER = "other"


class PhaseTimer:
    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.start()

    def start(self) -> None:
        """Forget everything so far; the next window starts now."""
        self.seconds: dict[str, float] = defaultdict(float)
        self._active: list[str] = []
        self._mark = self._window_start = self.clock()

    def _charge(self) -> None:
        now = self.clock()
        self.seconds[self._active[-1] if self._active else OTHER] += now - self._mark
        self._mark = now

    @contextmanager
    def __call__(self, phase: str):
        self._charge()
        self._active.append(phase)
        try:
            yield
        finally:
            self._charge()
            self._active.pop()

    def pop(self) -> dict[str, float]:
        """The window's timings as ``time/<phase>`` plus ``time/step`` (its whole
        length); the next window starts now."""
        self._charge()
        out = {f"time/{k}": v for k, v in self.seconds.items()}
        out["time/step"] = self._mark - self._window_start
        self.seconds = defaultdict(float)
        self._window_start = self._mark
        return out
