"""Scoring PersonaMem replies: the chosen option letter, and accuracy per question type."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cpe.data.persona_mem import PersonaMemItem

_FINAL_TAG = "<final_answer>"
_MARKED = re.compile(
    r"\banswer\b(?:\s+is)?[\s:*\-]*(?:\(([a-z])\)|([a-z])(?=[.*]*\s*$|[.,;!*)]))",
    re.IGNORECASE | re.MULTILINE,
)
_PARENTHESIZED = re.compile(r"(?<![a-z0-9])\(([a-z])\)", re.IGNORECASE)
_BARE = re.compile(r"\(?([a-z])\)?\.?", re.IGNORECASE)


def read_answer_letter(text: str) -> str | None:
    """The option letter of a model's final answer, lower-case, or None.

    Looks after the last ``<final_answer>`` tag when there is one (falling back to
    the whole text): a reply that is only a letter ("b", "(b)."), else the last
    explicit "answer is (b)" / "Answer: b", else the last parenthesized "(b)".
    """
    if _FINAL_TAG in text:
        letter = _letter_in(text.rsplit(_FINAL_TAG, 1)[1].replace("</final_answer>", ""))
        if letter is not None:
            return letter
    return _letter_in(text)


def accuracy_by_type(
    items: Sequence[PersonaMemItem], predictions: Mapping[str, str | None]
) -> dict[str, Any]:
    """Accuracy overall and per question_type; ``predictions`` maps item id -> letter.

    Returns ``{"overall": score, "by_type": {question_type: score}}`` where a score
    is ``{"accuracy", "correct", "total", "unanswered"}``; a missing or None
    prediction counts as wrong and as unanswered. Accuracy of no items is 0.0.
    """
    unknown = sorted(set(predictions) - {item.id for item in items})
    if unknown:
        raise ValueError(f"predictions for unknown item ids: {', '.join(unknown[:5])}")
    overall = _Score()
    by_type: dict[str, _Score] = {}
    for item in items:
        guess = _normalize_letter(predictions.get(item.id))
        for score in (overall, by_type.setdefault(item.question_type, _Score())):
            score.add(guess, item.correct)
    return {
        "overall": overall.as_dict(),
        "by_type": {name: score.as_dict() for name, score in sorted(by_type.items())},
    }


def _letter_in(text: str) -> str | None:
    """A reply that is only a letter, else the last marked answer, else the last "(x)"."""
    bare = _BARE.fullmatch(text.strip())
    marked = list(_MARKED.finditer(text))
    parenthesized = _PARENTHESIZED.findall(text)
    if bare:
        letter = bare.group(1)
    elif marked:
        letter = marked[-1].group(1) or marked[-1].group(2)
    elif parenthesized:
        letter = parenthesized[-1]
    else:
        return None
    return letter.lower()


def _normalize_letter(value: str | None) -> str | None:
    if value is None:
        return None
    letter = value.strip().strip("()").strip().lower()
    return letter or None


@dataclass
class _Score:
    correct: int = 0
    total: int = 0
    unanswered: int = 0

    def add(self, guess: str | None, correct: str) -> None:
        self.total += 1
        self.unanswered += guess is None
        self.correct += guess == correct

    def as_dict(self) -> dict[str, Any]:
        accuracy = self.correct / self.total if self.total else 0.0
        return {
            "accuracy": accuracy,
            "correct": self.correct,
            "total": self.total,
            "unanswered": self.unanswered,
        }
