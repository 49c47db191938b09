"""A resumable, seeded stream of prompt batches for training."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

from cpe.data.records import Record

_STATE_KEYS = ("epoch", "index", "seed")


class PromptCursor:
    """Yields batches of records, reshuffled every epoch and resumable from a checkpoint.

    Epoch ``e`` visits the records in the order of ``random.Random(seed + e)``, so the
    order depends only on (seed, epoch) and a cursor restored with
    :meth:`load_state_dict` yields exactly the batches the original would have.
    With ``drop_last`` the ``len(records) % batch_size`` records left at the end of
    an epoch are skipped (a different few each epoch); without it the last batch
    of an epoch is smaller.
    """

    def __init__(
        self, records: Sequence[Record], batch_size: int, seed: int, drop_last: bool = True
    ) -> None:
        self._records = tuple(records)
        _check_batch_size(batch_size, len(self._records))
        _check_int("seed", seed)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self._seed = seed
        self._epoch = 0
        self._index = 0
        self._order = self._permutation(0)

    @property
    def epoch(self) -> int:
        """The epoch of the most recent batch (0 before the first)."""
        return self._epoch

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def batches_per_epoch(self) -> int:
        full, rest = divmod(len(self._records), self.batch_size)
        return full if self.drop_last or not rest else full + 1

    def next_batch(self) -> list[Record]:
        """The next batch, starting a new epoch when the current one is used up."""
        if self._epoch_done():
            self._start_epoch(self._epoch + 1)
        end = min(self._index + self.batch_size, len(self._order))
        batch = [self._records[position] for position in self._order[self._index : end]]
        self._index = end
        return batch

    def __iter__(self) -> Iterator[list[Record]]:
        """Batches without end; the caller decides when training stops."""
        while True:
            yield self.next_batch()

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "index": self._index, "seed": self._seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise ValueError(f"cursor state lacks {', '.join(missing)}")
        for key in _STATE_KEYS:
            _check_int(key, state[key])
        if state["epoch"] < 0:
            raise ValueError(f"cursor state has a negative epoch: {state['epoch']}")
        if not 0 <= state["index"] <= len(self._records):
            raise ValueError(
                f"cursor state index {state['index']} is outside 0..{len(self._records)}; "
                "was it saved for a different data set?"
            )
        self._seed = state["seed"]
        self._start_epoch(state["epoch"])
        self._index = state["index"]

    def _epoch_done(self) -> bool:
        remaining = len(self._order) - self._index
        return remaining < self.batch_size if self.drop_last else remaining == 0

    def _start_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self._index = 0
        self._order = self._permutation(epoch)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(len(self._records)))
        random.Random(self._seed + epoch).shuffle(order)
        return order


def _check_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")


def _check_batch_size(batch_size: int, num_records: int) -> None:
    _check_int("batch_size", batch_size)
    if num_records == 0:
        raise ValueError("PromptCursor needs at least one record")
    if not 1 <= batch_size <= num_records:
        raise ValueError(
            f"batch_size must be between 1 and the number of records ({num_records}), "
            f"got {batch_size}"
        )
