"""Micro-batch bounds by rows and by a token budget, evened out across ranks
(hand-computed)."""

import pytest

from cpe.batch import TensorBatch
from cpe.learner.micro import cost, row_bounds, split_to, token_bounds


def test_row_bounds_are_fixed_chunks_with_a_shorter_last():
    assert row_bounds(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert row_bounds(4, 4) == [(0, 4)]
    with pytest.raises(ValueError, match="micro-batch rows must be >= 1"):
        row_bounds(4, 0)


def test_token_bounds_keep_rows_times_the_longest_within_the_budget():
    lengths = [10, 12, 30, 8, 8, 8, 50]
    # [10, 12]: 2 x 12 = 24; adding 30 -> 3 x 30 = 90 > 40. [30]: adding 8 -> 2 x 30 = 60.
    # [8, 8, 8]: 3 x 8 = 24; adding 50 -> 200. [50] alone, over the budget.
    assert token_bounds(lengths, 40) == [(0, 2), (2, 3), (3, 6), (6, 7)]
    assert token_bounds(lengths, 1000) == [(0, 7)]
    assert token_bounds([], 10) == []
    assert [cost(lengths, b) for b in token_bounds(lengths, 40)] == [24, 30, 24, 50]


def test_split_to_halves_the_costliest_until_the_count_matches():
    lengths = [10, 12, 30, 8, 8, 8, 50]
    bounds = [(0, 2), (2, 3), (3, 6), (6, 7)]  # costs 24, 30, 24, 50; only 0-2 and 3-6 split
    # 0-2 (24) and 3-6 (24) tie: max takes the first, (0, 1) + (1, 2);
    # then 3-6 (24) beats the 1-row ones: (3, 4) + (4, 6).
    assert split_to(bounds, lengths, 6) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 6), (6, 7)]
    assert split_to(bounds, lengths, 4) == bounds
    with pytest.raises(ValueError, match="7 rows cannot make 8 micro-batches"):
        split_to(bounds, lengths, 8)


def test_row_lengths_end_at_each_rows_last_real_token():
    batch = TensorBatch.from_sequences([[1], [2, 3, 4], [5, 6]], [[7], [8, 9], []], pad_id=0)
    assert batch.input_ids.shape[1] == 5  # right-padded to the longest row
    assert batch.row_lengths() == [2, 5, 2]
