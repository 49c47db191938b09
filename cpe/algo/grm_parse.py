"""Parsing the generative reward model's ``<critique>…</critique><scores>…</scores>`` output.

Tolerant of how real models write scores (markdown, full-width colons, unit suffixes,
unicode minus, British spelling), strict about meaning (spec step 5): a score that is
missing, not one integer, on another scale ("8/10", "4/5"), ambiguous ("3 or 4", "2-3",
two lines for one dimension, two ``<scores>`` blocks) or outside [−5, 5] makes the
judgement invalid; it is never guessed, and clamped only when asked (``clamp=True``).
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
_SCORES_BLOCK = re.compile(r"<\s*scores\s*>.*?(?:<\s*/\s*scores\s*>|$)", re.I | re.S)
_NEGATIVE_SIGNS = "−–—－-"  # ASCII hyphen last: it sits at the end of a [] class
_NUMBER = re.compile(
    rf"^(?P<sign>[+＋{_NEGATIVE_SIGNS}]?)\s*(?P<int>\d+)(?P<frac>\.\d+)?(?P<rest>.*)$", re.S
)
# "8/10", "4/5", "3 out of 10", "80%": a scale other than [-5, 5].
_OTHER_SCALE = re.compile(r"[/／]\s*\d|\bout\s+of\s+\d|\d\s*[%％]", re.I)
_UNIT = re.compile(r"^\s*(?:分|points?\b|pts?\b\.?)", re.I)
_PARENTHETICAL = re.compile(r"[(（][^)）]*[)）]?")

_GAP = r"[^\S\n*_]*[*_]*[^\S\n]*"  # spaces / markdown emphasis, never a line break


def _score_line(label: str) -> re.Pattern[str]:
    # label, optional markdown/"score"/"(H)", a colon of any width, then the value text
    # up to the line end, ";" or a "," that is not a decimal comma ("3,5").
    return re.compile(
        rf"(?<![a-z])(?:{label})(?![a-z]){_GAP}(?:score)?{_GAP}(?:\([^)\n]*\){_GAP})?"
        rf"[:：=]{_GAP}(?P<value>(?:[^\n,;，；]|[,，](?=\d))*)",
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
    """The last ``<critique>`` block; if unclosed, up to ``<scores>``; if absent, the
    whole text without its ``<scores>`` blocks (the edit prompt must not see scores)."""
    blocks = _CRITIQUE_BLOCK.findall(text)
    if blocks:
        return blocks[-1].strip()
    opened = list(_CRITIQUE_OPEN.finditer(text))
    if not opened:
        return _SCORES_BLOCK.sub("", text).strip()
    tail = text[opened[-1].end() :]
    scores = _SCORES_OPEN.search(tail)
    return (tail[: scores.start()] if scores else tail).strip()


def extract_scores_blocks(text: str) -> list[str]:
    """Bodies of the ``<scores>`` blocks after the critique (the last one may be unclosed).

    Only text after the last closed ``<critique>`` block is searched, so a critique that
    mentions the tag is not read as scores.
    """
    closed = list(_CRITIQUE_BLOCK.finditer(text))
    region = text[closed[-1].end() :] if closed else text
    opened = list(_SCORES_OPEN.finditer(region))
    bodies = []
    for i, match in enumerate(opened):
        end = opened[i + 1].start() if i + 1 < len(opened) else len(region)
        body = region[match.end() : end]
        closing = _SCORES_CLOSE.search(body)
        bodies.append(body[: closing.start()] if closing else body)
    return bodies


def parse_score_value(raw: str, clamp: bool = False) -> tuple[int | None, str | None]:
    """(score, None) for one integer in [−5, 5], else (None, why it is not one).

    ``clamp=True`` turns an out-of-range integer into the nearest bound instead.
    """
    text = raw.strip().lstrip("*_ ")
    if _OTHER_SCALE.search(text):
        return None, "is on another scale"
    match = _NUMBER.match(text)
    if not match:
        return None, "is not an integer"
    if match["frac"] and match["frac"].strip(".0"):
        return None, "is not an integer"
    if _is_ambiguous(match["rest"]):
        return None, "is ambiguous"
    digits = match["int"].lstrip("0") or "0"
    # Any longer number is out of range, and int() refuses more than 4300 digits.
    value = int(digits) if len(digits) <= 9 else 10**9
    if match["sign"] and match["sign"] in _NEGATIVE_SIGNS:
        value = -value
    if SCORE_MIN <= value <= SCORE_MAX:
        return value, None
    if clamp:
        return max(SCORE_MIN, min(SCORE_MAX, value)), None
    return None, f"is outside [{SCORE_MIN}, {SCORE_MAX}]"


def _is_ambiguous(rest: str) -> bool:
    """True when the text after the number could change its meaning ("e1", " or 4", "-3").

    A unit ("分", "points") and comments are fine; any other number outside parentheses
    is not, because the reader would have to guess which one is the score.
    """
    if rest[:1].isalnum():
        unit = _UNIT.match(rest)
        if not unit:
            return True
        rest = rest[unit.end() :]
    return any(ch.isdigit() for ch in _PARENTHETICAL.sub("", rest))


def _read_dimension(
    block: str, field: str, name: str, clamp: bool
) -> tuple[int | None, str | None]:
    """(score, problem) for one dimension; two lines naming it are a problem."""
    lines = list(_SCORE_LINES[field].finditer(block))
    if not lines:
        return None, f"missing {name} score"
    if len(lines) > 1:
        return None, f"{name} score given {len(lines)} times"
    raw = lines[0]["value"].strip()
    if not raw.strip("*_ "):
        return None, f"missing {name} score"
    value, problem = parse_score_value(raw, clamp)
    if problem:
        shown = raw if len(raw) <= 40 else f"{raw[:37]}..."  # the error is logged per row
        return None, f"{name} score {shown!r} {problem}"
    return value, None


def parse_grm_output(text: str, clamp: bool = False) -> Judgement:
    """Parse a GRM output into a Judgement (never raises on malformed text).

    ``clamp=True`` (``grm.clamp_scores``) clamps an out-of-range integer score to
    [−5, 5] instead of making the judgement invalid.
    """
    critique = extract_critique(text)
    blocks = extract_scores_blocks(text)
    if len(blocks) != 1:
        error = f"{len(blocks)} <scores> blocks" if blocks else "missing <scores> block"
        return Judgement(critique, None, None, None, valid=False, error=error)
    scores: dict[str, int | None] = {}
    problems: list[str] = []
    for field, name, _ in DIMENSIONS:
        scores[field], problem = _read_dimension(blocks[0], field, name, clamp)
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
