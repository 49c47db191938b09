"""Asking the teacher: every answer not yet in labels.jsonl is scored with the GRM rubric
(one ``GRMScorer.score`` call per chunk), and each chunk is made durable before the next
is sent, so a kill repeats at most the chunk in flight."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from cpe.data.records import Record
from cpe.label.store import SIDES, Label, LabelStore, answer_digest
from cpe.reward.base import GRMScorer


@dataclass(frozen=True)
class Answer:
    """One side of one pair, as the teacher sees it."""

    record: Record
    side: str

    @property
    def text(self) -> str:
        return getattr(self.record, self.side)

    @property
    def digest(self) -> str:
        return answer_digest(self.record.question, self.text)


@dataclass(frozen=True)
class TeacherRun:
    labelled: int  # asked this run
    reused: int  # found in labels.jsonl


def answers_of(pairs: Sequence[Record]) -> list[Answer]:
    return [Answer(record, side) for record in pairs for side in SIDES]


def label_answers(
    teacher: Callable[[], GRMScorer],
    pairs: Sequence[Record],
    store: LabelStore,
    chunk: int,
    progress: bool = True,
) -> TeacherRun:
    answers = answers_of(pairs)
    todo = [a for a in answers if store.done(a.record.id, a.side, a.digest) is None]
    reused = len(answers) - len(todo)
    scorer = teacher() if todo else None  # a finished folder starts no engine
    bar = tqdm(
        total=len(answers), initial=reused, desc="labelling", unit="answer", disable=not progress
    )
    with bar:
        for start in range(0, len(todo), chunk):
            batch = todo[start : start + chunk]
            results = scorer.score([(a.record, a.text) for a in batch])
            store.append(
                Label.from_result(a.record.id, a.side, a.digest, result)
                for a, result in zip(batch, results, strict=True)
            )
            bar.update(len(batch))
    return TeacherRun(labelled=len(todo), reused=reused)
