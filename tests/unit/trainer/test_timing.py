"""The step clock: phases, the clocked "other", and windows that add up."""

import pytest

from cpe.trainer.timing import PhaseTimer

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def tick(self, seconds):
        self.now += seconds


def test_time_outside_phases_is_other_and_the_window_adds_up():
    clock = FakeClock()
    timer = PhaseTimer(clock)
    clock.tick(0.5)  # glue before the first phase
    with timer("generate"):
        clock.tick(3.0)
    clock.tick(0.25)
    with timer("update"):
        clock.tick(2.0)
    with timer("generate"):  # a phase met twice adds up
        clock.tick(1.0)
    clock.tick(0.25)
    out = timer.pop()
    assert out == {
        "time/other": 1.0,
        "time/generate": 4.0,
        "time/update": 2.0,
        "time/step": 7.0,
    }


def test_nested_phase_charges_the_innermost():
    clock = FakeClock()
    timer = PhaseTimer(clock)
    with timer("eval"):
        clock.tick(1.0)
        with timer("generate"):
            clock.tick(4.0)
        clock.tick(2.0)
    out = timer.pop()
    assert out == {"time/other": 0.0, "time/eval": 3.0, "time/generate": 4.0, "time/step": 7.0}


def test_pop_starts_a_new_window_and_start_forgets():
    clock = FakeClock()
    timer = PhaseTimer(clock)
    with timer("sync"):
        clock.tick(2.0)
    timer.pop()
    clock.tick(1.5)
    with timer("checkpoint"):  # after the step's row: counted in the next window
        clock.tick(0.5)
    assert timer.pop() == {"time/other": 1.5, "time/checkpoint": 0.5, "time/step": 2.0}
    clock.tick(60.0)  # start-up before fit
    timer.start()
    clock.tick(1.0)
    assert timer.pop() == {"time/other": 1.0, "time/step": 1.0}


def test_an_exception_inside_a_phase_still_charges_it():
    clock = FakeClock()
    timer = PhaseTimer(clock)
    with pytest.raises(RuntimeError), timer("update"):
        clock.tick(2.0)
        raise RuntimeError("rank died")
    assert timer.pop()["time/update"] == 2.0
