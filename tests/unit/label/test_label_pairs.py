"""Preference rules on hand-made rewards, the stable split, and assembling outputs."""

from __future__ import annotations

import pytest

from cpe.config import LabelConfig
from cpe.data.records import Record
from cpe.data.split import is_held_out
from cpe.label.assemble import assemble
from cpe.label.pairs import (
    CONSISTENCY_FILTER,
    EQUAL_REWARDS,
    PREFERENCES,
    Rewards,
)
from cpe.label.store import Label
from cpe.prompts import DEFAULT, grm_messages

RECORD = Record(id="p", persona={"a": 1}, question="Q?", chosen="first", rejected="second")


def test_dataset_keeps_the_data_order_whatever_the_teacher_says():
    verdict = PREFERENCES["dataset"](RECORD, Rewards(chosen=-1.0, rejected=2.0), False)
    assert verdict.record == RECORD and verdict.dropped is None and not verdict.swapped


def test_consistency_filter_drops_pairs_the_teacher_ranks_the_other_way():
    rule = PREFERENCES["dataset"]
    assert rule(RECORD, Rewards(-1.0, 2.0), True).dropped == CONSISTENCY_FILTER
    assert rule(RECORD, Rewards(2.0, -1.0), True).record == RECORD
    assert rule(RECORD, Rewards(1.0, 1.0), True).record == RECORD  # a tie is no contradiction


def test_teacher_keeps_or_swaps_by_reward():
    rule = PREFERENCES["teacher"]
    assert rule(RECORD, Rewards(3.0, 1.0), False).record == RECORD
    swapped = rule(RECORD, Rewards(1.0, 3.0), False)
    assert swapped.swapped
    assert (swapped.record.chosen, swapped.record.rejected) == ("second", "first")


def test_teacher_drops_ties():
    verdict = PREFERENCES["teacher"](RECORD, Rewards(2.0, 2.0), False)
    assert verdict.record is None and verdict.dropped == EQUAL_REWARDS


def test_split_is_stable_and_follows_the_share():
    ids = [f"pair-{i}" for i in range(2000)]
    held = [i for i in ids if is_held_out(i, 0.1)]
    assert held == [i for i in ids if is_held_out(i, 0.1)]
    assert 150 < len(held) < 250
    assert not any(is_held_out(i, 0.0) for i in ids)
    # Known values: the same on every machine and Python process.
    assert [is_held_out(f"pair-{i}", 0.5) for i in range(8)] == [
        True, False, False, False, True, False, False, True
    ]  # fmt: skip
    assert set(held) <= {i for i in ids if is_held_out(i, 0.3)}  # a larger share only adds


def _label(pair_id: str, side: str, reward: float | None) -> Label:
    valid = reward is not None
    score = int(reward) if valid else None
    return Label(
        pair_id, side, "d", f"out {pair_id} {side}", valid, None if valid else "bad",
        score, score, score, reward, 1,
    )  # fmt: skip


def _pairs(rewards: dict[str, tuple[float | None, float | None]]):
    records = [
        Record(id=i, persona={"a": 1}, question=f"{i}?", chosen=f"c-{i}", rejected=f"r-{i}")
        for i in rewards
    ]
    labels = {}
    for i, (c, r) in rewards.items():
        labels[(i, "chosen")] = _label(i, "chosen", c)
        labels[(i, "rejected")] = _label(i, "rejected", r)
    return records, labels


@pytest.mark.parametrize("preference", ["dataset", "teacher"])
def test_assemble_counts_and_orders(preference):
    records, labels = _pairs({"a": (3.0, 1.0), "b": (0.0, 2.0), "c": (1.0, 1.0), "d": (None, 2.0)})
    cfg = LabelConfig(preference=preference, eval_share=0.0)
    built = assemble(records, labels, cfg, DEFAULT)
    assert built.invalid == 1 and built.first_errors == ["d:chosen: bad"]
    assert built.dropped.invalid_side == 1
    # Every valid label is a GRM SFT example, whatever happens to its pair.
    assert [e.id for e in built.train.grm_sft] == [
        "a:chosen", "a:rejected", "b:chosen", "b:rejected", "c:chosen", "c:rejected",
        "d:rejected",
    ]  # fmt: skip
    example = built.train.grm_sft[0]
    assert example.messages == grm_messages(records[0], "c-a", DEFAULT)
    assert example.response == "out a chosen"
    pairs = {p.id: p for p in built.train.pairs}
    assert (built.agreement.agree, built.agreement.disagree, built.agreement.ties) == (1, 1, 1)
    if preference == "dataset":
        assert sorted(pairs) == ["a", "b", "c"]
        assert pairs["b"].chosen == "c-b"
        assert built.agreement.rate == pytest.approx(1 / 3)
    else:
        assert sorted(pairs) == ["a", "b"] and built.dropped.equal_rewards == 1
        assert (pairs["b"].chosen, pairs["b"].rejected) == ("r-b", "c-b")
        assert pairs["b"].meta == {"chosen_reward": 2.0, "rejected_reward": 0.0}


def test_consistency_filter_in_assembly():
    records, labels = _pairs({"a": (3.0, 1.0), "b": (0.0, 2.0)})
    cfg = LabelConfig(consistency_filter=True, eval_share=0.0)
    built = assemble(records, labels, cfg, DEFAULT)
    assert [p.id for p in built.train.pairs] == ["a"]
    assert built.dropped.consistency_filter == 1


def test_held_out_pairs_go_to_eval_with_their_examples():
    ids = {f"p{i}": (2.0, 1.0) for i in range(40)}
    records, labels = _pairs(ids)
    built = assemble(records, labels, LabelConfig(eval_share=0.5), DEFAULT)
    held = {i for i in ids if is_held_out(i, 0.5)}
    assert {p.id for p in built.eval.pairs} == held
    assert {e.id.split(":")[0] for e in built.eval.grm_sft} == held
    assert not held & {p.id for p in built.train.pairs}
