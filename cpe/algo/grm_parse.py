"""Parsing the generative reward model's ``<critique>…</critique><scores>…</scores>`` output.

Tolerant of how real models write scores (markdown, full-width colons, unit suffixes,
unicode minus, British spelling), strict about meaning: a missing or non-integer
score makes the judgement invalid instead of silently becoming 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

SCORE_MIN, SCORE_MAX = -5, 5
DEFAULT_WEIGHTS = (0.35, 0.40, 0.25)

# (field name, display name, label pattern)
DIMENSIONS = (
    ("helpfulness", "Helpfulness", r"helpful(?:ness)?"),
    ("personalization", "Personalization", r"personali[sz](?:ation|ed)"),
    ("naturalness", "Naturalness", r"natural(?:ness)?"),
)

_CRITIQUE_BLOCK = re.compile(r"<\s*critique\s*>(.*?)<\s*/\s*critique\s*>", re.I | re.S)
_CRITIQUE_OPEN = re.compile(r"<\s*critique\s*>", re.I)
_SCORES_OPEN = re.compile(r"<\s*scores\s*>", re.I)
_SCORES_CLOSE = re.compile(r"<\s*/\s*scores\s*>", re.I)
_NEGATIVE_SIGNS = "−–—－-"  # ASCII hyphen last: it sits at the end of a [] class
_VALUE = re.compile(
    rf"^(?P<sign>[+＋{_NEGATIVE_SIGNS}]?)\s*(?P<number>\d+(?:\.\d+)?)(?P<rest>.*)$", re.S
)
# "2-3" or "2 to 3" is a range, not a score.
_RANGE_TAIL = re.compile(r"^\s*(?:[-~–—]|to\b)\s*\d", re.I)


_GAP = r"[^\S\n*_]*[*_]*[^\S\n]*"  # spaces / markdown emphasis, never a line break


def _score_line(label: str) -> re.Pattern[str]:
    # label, optional markdown/"score"/"(H)", a colon of any width, then the value text.
    return re.compile(
        rf"(?<![a-z])(?:{label})(?![a-z]){_GAP}(?:score)?{_GAP}(?:\([^)\n]*\){_GAP})?"
        rf"[:：=]{_GAP}(?P<value>[^\n,;，；]*)",
        re.I,
    )


_SCORE_LINES = {field: _score_line(label) for field, _, label in DIMENSIONS}


@dataclass(frozen=True)
class Judgement:
    """One parsed GRM output; ``valid`` is False when any score is missing or unreadable."""

    critique: str
    helpfulness: int | None
    personalization: int | None
    naturalness: int | None
    valid: bool
    error: str | None = None

    @property
    def scores(self) -> tuple[int | None, int | None, int | None]:
        """(Helpfulness, Personalization, Naturalness)."""
        return (self.helpfulness, self.personalization, self.naturalness)


def extract_critique(text: str) -> str:
    """The last ``<critique>`` block; if unclosed, up to ``<scores>``; if absent, all text."""
    blocks = _CRITIQUE_BLOCK.findall(text)
    if blocks:
        return blocks[-1].strip()
    opened = list(_CRITIQUE_OPEN.finditer(text))
    if not opened:
        return text.strip()
    tail = text[opened[-1].end() :]
    scores = _SCORES_OPEN.search(tail)
    return (tail[: scores.start()] if scores else tail).strip()


def extract_scores_block(text: str) -> str | None:
    """Body of the last ``<scores>`` block (to the end of text if unclosed), or None."""
    opened = list(_SCORES_OPEN.finditer(text))
    if not opened:
        return None
    tail = text[opened[-1].end() :]
    closing = _SCORES_CLOSE.search(tail)
    return tail[: closing.start()] if closing else tail


def parse_score_value(raw: str) -> int | None:
    """Integer score in ``raw`` (clamped to [−5, 5]), or None if it is not one integer."""
    match = _VALUE.match(raw.strip().lstrip("*_ "))
    if not match or _RANGE_TAIL.match(match["rest"]):
        return None
    number = float(match["number"])
    if not number.is_integer():
        return None
    value = -int(number) if match["sign"] and match["sign"] in _NEGATIVE_SIGNS else int(number)
    return max(SCORE_MIN, min(SCORE_MAX, value))


def _read_dimension(block: str, field: str, name: str) -> tuple[int | None, str | None]:
    """(score, problem) for one dimension; the last line naming it wins."""
    lines = list(_SCORE_LINES[field].finditer(block))
    if not lines:
        return None, f"missing {name} score"
    raw = lines[-1]["value"].strip()
    if not raw.strip("*_ "):
        return None, f"missing {name} score"
    value = parse_score_value(raw)
    if value is None:
        return None, f"non-integer {name} score {raw!r}"
    return value, None


def parse_grm_output(text: str) -> Judgement:
    """Parse a GRM output into a Judgement (never raises on malformed text)."""
    critique = extract_critique(text)
    block = extract_scores_block(text)
    if block is None:
        return Judgement(critique, None, None, None, valid=False, error="missing <scores> block")
    scores: dict[str, int | None] = {}
    problems: list[str] = []
    for field, name, _ in DIMENSIONS:
        scores[field], problem = _read_dimension(block, field, name)
        if problem:
            problems.append(problem)
    error = "; ".join(problems) or None
    return Judgement(critique, **scores, valid=error is None, error=error)


def final_score(
    scores: Judgement | Sequence[int | None],
    weights: Sequence[float] = DEFAULT_WEIGHTS,
) -> float:
    """Weighted sum of (H, P, N); ValueError for an invalid judgement or a missing score."""
    if isinstance(scores, Judgement):
        if not scores.valid:
            raise ValueError(f"cannot score an invalid judgement: {scores.error}")
        scores = scores.scores
    if len(scores) != 3 or len(weights) != 3:
        raise ValueError("need exactly three scores (H, P, N) and three weights")
    if any(s is None for s in scores):
        raise ValueError(f"missing score in {tuple(scores)}")
    return float(sum(w * s for w, s in zip(weights, scores, strict=True)))
