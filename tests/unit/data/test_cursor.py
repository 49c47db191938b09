from __future__ import annotations

import pytest

from cpe.data import PromptCursor, Record


def _records(count: int) -> list[Record]:
    return [Record(f"r{n}", {"n": n}, f"q{n}") for n in range(count)]


def _ids(batches) -> list[list[str]]:
    return [[record.id for record in batch] for batch in batches]


def _take(cursor: PromptCursor, count: int) -> list[list[str]]:
    return _ids(cursor.next_batch() for _ in range(count))


def _take_batches(cursor: PromptCursor, count: int) -> list[list[Record]]:
    return [cursor.next_batch() for _ in range(count)]


@pytest.mark.parametrize(("count", "batch_size"), [(9, 3), (10, 3)])
def test_resumed_cursor_yields_the_same_batches_across_an_epoch_boundary(count, batch_size):
    records = _records(count)
    uninterrupted = PromptCursor(records, batch_size, seed=7)
    interrupted = PromptCursor(records, batch_size, seed=7)
    _take(uninterrupted, 3)
    _take(interrupted, 3)
    state = interrupted.state_dict()

    resumed = PromptCursor(records, batch_size, seed=7)
    resumed.load_state_dict(state)
    expected = _take(uninterrupted, 5)
    assert _take(resumed, 5) == expected
    assert resumed.epoch == uninterrupted.epoch == 2  # three batches per epoch: 3 + 5 spans two


def test_resume_mid_epoch_without_drop_last():
    records = _records(7)
    uninterrupted = PromptCursor(records, 3, seed=1, drop_last=False)
    _take(uninterrupted, 2)
    resumed = PromptCursor(records, 3, seed=1, drop_last=False)
    resumed.load_state_dict(uninterrupted.state_dict())
    assert _take(resumed, 6) == _take(uninterrupted, 6)


def test_state_dict_has_epoch_index_and_seed():
    cursor = PromptCursor(_records(10), 4, seed=3)
    assert cursor.state_dict() == {"epoch": 0, "index": 0, "seed": 3}
    cursor.next_batch()
    assert cursor.state_dict() == {"epoch": 0, "index": 4, "seed": 3}
    _take(cursor, 2)
    assert cursor.state_dict() == {"epoch": 1, "index": 4, "seed": 3}


def test_loaded_state_brings_its_seed():
    records = _records(8)
    original = PromptCursor(records, 2, seed=11)
    _take(original, 1)
    resumed = PromptCursor(records, 2, seed=0)
    resumed.load_state_dict(original.state_dict())
    assert resumed.seed == 11
    assert _take(resumed, 6) == _take(original, 6)


def test_each_epoch_is_a_fresh_seeded_permutation():
    records = _records(12)
    cursor = PromptCursor(records, 4, seed=5)
    epochs = [sum(_take(cursor, 3), []) for _ in range(3)]
    for order in epochs:
        assert sorted(order) == sorted(r.id for r in records)
    assert epochs[0] != epochs[1] != epochs[2]
    assert sum(_take(PromptCursor(records, 4, seed=5), 3), []) == epochs[0]
    assert sum(_take(PromptCursor(records, 4, seed=6), 3), []) != epochs[0]


def test_drop_last_controls_the_short_batch():
    assert [len(b) for b in _take_batches(PromptCursor(_records(7), 3, seed=0), 3)] == [3, 3, 3]
    cursor = PromptCursor(_records(7), 3, seed=0, drop_last=False)
    assert [len(b) for b in _take_batches(cursor, 4)] == [3, 3, 1, 3]
    assert cursor.epoch == 1
    assert PromptCursor(_records(7), 3, seed=0).batches_per_epoch == 2
    assert cursor.batches_per_epoch == 3


def test_iteration_runs_across_epochs():
    cursor = PromptCursor(_records(4), 2, seed=0)
    batches = []
    for batch in cursor:
        batches.append(batch)
        if len(batches) == 5:
            break
    assert cursor.epoch == 2
    assert all(len(batch) == 2 for batch in batches)


@pytest.mark.parametrize("batch_size", [0, 6])
def test_batch_size_must_fit_the_records(batch_size):
    with pytest.raises(ValueError, match=r"between 1 and the number of records \(5\)"):
        PromptCursor(_records(5), batch_size, seed=0)


def test_no_records_is_an_error():
    with pytest.raises(ValueError, match="at least one record"):
        PromptCursor([], 1, seed=0)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"epoch": 0, "index": 0}, "lacks seed"),
        ({"epoch": -1, "index": 0, "seed": 0}, "negative epoch"),
        ({"epoch": 0, "index": 9, "seed": 0}, "outside 0..5"),
    ],
)
def test_bad_state_is_rejected(state, message):
    with pytest.raises(ValueError, match=message):
        PromptCursor(_records(5), 2, seed=0).load_state_dict(state)
