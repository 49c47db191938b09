"""Preference rules: which answer of a labelled pair is the chosen one, and which pairs
are dropped; plus the stable train / held-out split of pairs.

A rule gets the record (its ``chosen`` / ``rejected`` as the data gave them, or as
sampled) and the teacher's reward of each side, and returns a :class:`Verdict`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from cpe.data.records import Record

EQUAL_REWARDS = "equal_rewards"
CONSISTENCY_FILTER = "consistency_filter"


@dataclass(frozen=True)
class Rewards:
    """The teacher's rewards of the record's chosen and rejected answer as given."""

    chosen: float
    rejected: float


@dataclass(frozen=True)
class Verdict:
    """``record`` with chosen/rejected in their final order, or None when ``dropped``."""

    record: Record | None
    dropped: str | None = None
    swapped: bool = False


def dataset_order(record: Record, rewards: Rewards, consistency_filter: bool) -> Verdict:
    """Keep the data's preference; the filter drops pairs the teacher ranks the other way."""
    if consistency_filter and rewards.rejected > rewards.chosen:
        return Verdict(None, CONSISTENCY_FILTER)
    return Verdict(record)


def teacher_order(record: Record, rewards: Rewards, consistency_filter: bool) -> Verdict:
    """The answer the teacher rewards higher is chosen; a tie says nothing, so it is dropped."""
    if rewards.chosen == rewards.rejected:
        return Verdict(None, EQUAL_REWARDS)
    if rewards.chosen > rewards.rejected:
        return Verdict(record)
    return Verdict(replace(record, chosen=record.rejected, rejected=record.chosen), swapped=True)


PREFERENCES: dict[str, Callable[[Record, Rewards, bool], Verdict]] = {
    "dataset": dataset_order,
    "teacher": teacher_order,
}
