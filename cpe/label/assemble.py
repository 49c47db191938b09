"""From labelled answers to training data: GRM SFT examples (one per valid label) and
preference pairs (ordered and filtered by the ``label.preference`` rule), each split into
train and held-out by a hash of the pair id. Pure: no files, no teacher."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from cpe.config import LabelConfig
from cpe.data.records import Record
from cpe.data.split import is_held_out
from cpe.label.pairs import (
    CONSISTENCY_FILTER,
    EQUAL_REWARDS,
    PREFERENCES,
    Rewards,
)
from cpe.label.store import SIDES, Label
from cpe.prompts import PromptSet, grm_messages
from cpe.prompts.chat import Message

MAX_ERRORS = 3


@dataclass(frozen=True)
class SFTExample:
    """One GRM SFT example: the chat the GRM sees and the teacher's output as the target."""

    id: str  # "<pair id>:<side>"
    messages: list[Message]
    response: str


@dataclass
class Split:
    grm_sft: list[SFTExample] = field(default_factory=list)
    pairs: list[Record] = field(default_factory=list)


@dataclass
class Dropped:
    equal_rewards: int = 0
    consistency_filter: int = 0
    invalid_side: int = 0
    unlabelled: int = 0


@dataclass
class Agreement:
    """preference=dataset: how the teacher ranks the data's chosen vs rejected answer."""

    agree: int = 0  # chosen rewarded higher
    disagree: int = 0
    ties: int = 0

    @property
    def rate(self) -> float | None:
        total = self.agree + self.disagree + self.ties
        return self.agree / total if total else None


@dataclass
class Assembly:
    train: Split = field(default_factory=Split)
    eval: Split = field(default_factory=Split)
    dropped: Dropped = field(default_factory=Dropped)
    invalid: int = 0
    first_errors: list[str] = field(default_factory=list)
    agreement: Agreement = field(default_factory=Agreement)


def assemble(
    pairs: Sequence[Record],
    labels: Mapping[tuple[str, str], Label],
    cfg: LabelConfig,
    prompts: PromptSet,
) -> Assembly:
    """A pair lacking a label (its answer got no reply this run) is dropped as unlabelled."""
    out = Assembly()
    rule = PREFERENCES[cfg.preference]
    for record in pairs:
        split = out.eval if is_held_out(record.id, cfg.eval_share) else out.train
        found = {side: labels.get((record.id, side)) for side in SIDES}
        sides = {side: label for side, label in found.items() if label is not None}
        for side, label in sides.items():
            _add_example(out, split, record, side, label, prompts)
        if len(sides) < len(SIDES):
            out.dropped.unlabelled += 1
            continue
        if not all(label.valid for label in sides.values()):
            out.dropped.invalid_side += 1
            continue
        rewards = Rewards(sides["chosen"].reward, sides["rejected"].reward)
        _count_agreement(out.agreement, rewards)
        verdict = rule(record, rewards, cfg.consistency_filter)
        if verdict.record is None:
            _count_drop(out.dropped, verdict.dropped)
            continue
        ordered = rewards if not verdict.swapped else Rewards(rewards.rejected, rewards.chosen)
        split.pairs.append(_with_rewards(verdict.record, ordered))
    return out


def _add_example(
    out: Assembly, split: Split, record: Record, side: str, label: Label, prompts: PromptSet
) -> None:
    if not label.valid:
        out.invalid += 1
        if len(out.first_errors) < MAX_ERRORS:
            out.first_errors.append(f"{record.id}:{side}: {label.error}")
        return
    messages = grm_messages(record, getattr(record, side), prompts)
    split.grm_sft.append(SFTExample(f"{record.id}:{side}", messages, label.output))


def _count_agreement(agreement: Agreement, rewards: Rewards) -> None:
    if rewards.chosen > rewards.rejected:
        agreement.agree += 1
    elif rewards.chosen < rewards.rejected:
        agreement.disagree += 1
    else:
        agreement.ties += 1


def _count_drop(dropped: Dropped, reason: str | None) -> None:
    if reason == EQUAL_REWARDS:
        dropped.equal_rewards += 1
    elif reason == CONSISTENCY_FILTER:
        dropped.consistency_filter += 1
    else:
        raise ValueError(f"a preference rule dropped a pair for an unknown reason: {reason!r}")


def _with_rewards(record: Record, rewards: Rewards) -> Record:
    """The teacher's rewards ride along in meta (Bradley-Terry margins, inspection)."""
    meta = {**record.meta, "chosen_reward": rewards.chosen, "rejected_reward": rewards.rejected}
    return replace(record, reference=None, meta=meta)
