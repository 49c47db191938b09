"""Asking the teacher: every answer not yet in labels.jsonl is scored with the GRM rubric
at ``grm.score_temperature``, in the rounds of :class:`GRMScorer` (round k > 1 re-asks
what came back empty or unparseable, after ``grm.backoff_s * 2**(k-2)`` seconds, up to
``grm.retries`` times). Each final result is appended to labels.jsonl as its reply
arrives, so a kill repeats only the requests still unanswered. Transport failures are
counted, not stored: a re-run asks for those answers again."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from tqdm import tqdm

from cpe.data.records import Record
from cpe.label.store import SIDES, Label, LabelStore, answer_digest
from cpe.reward.base import GRMScorer, Reply, score_result

MAX_ERRORS = 3


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

    @property
    def name(self) -> str:
        return f"{self.record.id}:{self.side}"


@dataclass
class TeacherRun:
    labelled: int = 0  # answered and stored this run
    reused: int = 0  # found in labels.jsonl
    transport_failures: int = 0  # no answer from the teacher: not stored, asked again next run
    first_transport_errors: list[str] = field(default_factory=list)


def answers_of(pairs: Sequence[Record]) -> list[Answer]:
    return [Answer(record, side) for record in pairs for side in SIDES]


def label_answers(
    teacher: Callable[[], GRMScorer],
    pairs: Sequence[Record],
    store: LabelStore,
    chunk: int,
    progress: bool = True,
) -> TeacherRun:
    """``chunk``: at most this many answers per backend call (its batch)."""
    answers = answers_of(pairs)
    todo = [a for a in answers if store.done(a.record.id, a.side, a.digest) is None]
    run = TeacherRun(reused=len(answers) - len(todo))
    if not todo:
        return run  # a finished folder starts no engine
    bar = tqdm(
        total=len(answers),
        initial=run.reused,
        desc="labelling",
        unit="answer",
        disable=not progress,
    )
    with bar:
        _Asking(teacher(), store, run, bar).rounds(todo, chunk)
    return run


class _Asking:
    """One run's requests: the rounds over the pending answers, each reply kept as it
    arrives (the backend may call back from its own thread, one reply at a time)."""

    def __init__(self, scorer: GRMScorer, store: LabelStore, run: TeacherRun, bar: tqdm):
        self.scorer = scorer
        self.store = store
        self.run = run
        self.bar = bar
        self.again: list[Answer] = []

    def rounds(self, todo: list[Answer], chunk: int) -> None:
        pending, last = todo, self.scorer.retries + 1
        for attempt in range(1, last + 1):
            if not pending:
                return
            if attempt > 1:
                time.sleep(self.scorer.backoff_s * 2 ** (attempt - 2))
            self.again = []
            for start in range(0, len(pending), chunk):
                self._ask(pending[start : start + chunk], attempt, attempt == last)
            pending = self.again

    def _ask(self, batch: list[Answer], attempt: int, last: bool) -> None:
        def on_reply(index: int, reply: Reply) -> None:
            self._keep(batch[index], reply, attempt, last)

        items = [(a.record, a.text) for a in batch]
        self.scorer.backend.generate_each(items, self.scorer.score_temperature, on_reply)

    def _keep(self, answer: Answer, reply: Reply, attempt: int, last: bool) -> None:
        scorer = self.scorer
        result = score_result(reply, scorer.weights, clamp=scorer.clamp_scores)
        if result.retryable and not last:
            self.again.append(answer)
            return
        if result.valid or result.retryable:
            # Valid, or answered but unparseable after the last re-ask (invalid).
            label = Label.from_result(
                answer.record.id, answer.side, answer.digest, replace(result, attempts=attempt)
            )
            self.store.append([label])
            self.run.labelled += 1
        else:
            self.run.transport_failures += 1
            if len(self.run.first_transport_errors) < MAX_ERRORS:
                self.run.first_transport_errors.append(f"{answer.name}: {result.error}")
        self.bar.update(1)
