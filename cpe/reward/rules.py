"""Built-in rule-based GRM functions for ``grm.backend=python``: simple, checkable rewards.

Both return GRM-format text whose one-line critique tells the policy what to change,
so the edit step has something to act on. Settings come from environment variables,
read at call time:

- ``keyword_reward``: ``CPE_RULE_KEYWORD`` (default ``"the"``), counted as a whole word,
  case-insensitively. 0 occurrences -> -5, each one +2, 5 or more -> 5.
- ``length_reward``: ``CPE_RULE_TARGET_CHARS`` (default 40). Exactly on target -> 5,
  off by the target length or more -> -5, linear in between.

All three dimensions get the same score, so the reward equals it for any weights that
sum to 1.
"""

from __future__ import annotations

import os
import re
from typing import Any

from cpe.reward.format import format_grm_output

KEYWORD_ENV, KEYWORD_DEFAULT = "CPE_RULE_KEYWORD", "the"
TARGET_CHARS_ENV, TARGET_CHARS_DEFAULT = "CPE_RULE_TARGET_CHARS", 40
KEYWORD_ENOUGH = 5


def _clamp(value: float) -> int:
    return max(-5, min(5, round(value)))


def _same_scores(critique: str, score: int) -> str:
    return format_grm_output(critique, [score, score, score])


def rule_keyword() -> str:
    keyword = os.environ.get(KEYWORD_ENV, KEYWORD_DEFAULT).strip()
    if not keyword:
        raise ValueError(f"{KEYWORD_ENV} is set but empty")
    return keyword


def rule_target_chars() -> int:
    raw = os.environ.get(TARGET_CHARS_ENV, str(TARGET_CHARS_DEFAULT))
    try:
        target = int(raw)
    except ValueError:
        raise ValueError(f"{TARGET_CHARS_ENV}={raw!r} is not an integer") from None
    if target < 1:
        raise ValueError(f"{TARGET_CHARS_ENV}={target} must be >= 1")
    return target


def count_keyword(answer: str, keyword: str) -> int:
    return len(re.findall(rf"(?<!\w){re.escape(keyword)}(?!\w)", answer, flags=re.I))


def keyword_score(count: int) -> int:
    return _clamp(2 * count - 5)


def keyword_reward(persona: dict[str, Any], question: str, answer: str) -> str:
    """Rewards using the keyword: -5 without it, +2 per use, 5 from five uses on."""
    keyword = rule_keyword()
    count = count_keyword(answer, keyword)
    if count >= KEYWORD_ENOUGH:
        critique = f'Good: the word "{keyword}" appears {count} times. Keep it that way.'
    else:
        critique = (
            f'Use the word "{keyword}" more: it appears {count} time(s); '
            f"aim for at least {KEYWORD_ENOUGH}."
        )
    return _same_scores(critique, keyword_score(count))


def length_score(chars: int, target: int) -> int:
    return _clamp(5 - 10 * abs(chars - target) / target)


def length_reward(persona: dict[str, Any], question: str, answer: str) -> str:
    """Rewards an answer of about ``CPE_RULE_TARGET_CHARS`` characters (stripped)."""
    target = rule_target_chars()
    chars = len(answer.strip())
    if chars > target:
        critique = f"Make the answer shorter: it has {chars} characters; aim for about {target}."
    elif chars < target:
        critique = f"Make the answer longer: it has {chars} characters; aim for about {target}."
    else:
        critique = f"Good: the answer has exactly {target} characters. Keep the length."
    return _same_scores(critique, length_score(chars, target))


LETTER_ENV, LETTER_DEFAULT = "CPE_RULE_LETTER", "e"


def letter_reward(persona: dict[str, Any], question: str, answer: str) -> str:
    """Dense and checkable: one point per use of a letter (``CPE_RULE_LETTER``, default
    "e"), centred so that 3 uses score 0; clamped to [-5, 5]. Used by the learning test,
    where a random tiny model gets a reward that varies from its first step."""
    letter = os.environ.get(LETTER_ENV, LETTER_DEFAULT)
    if len(letter) != 1:
        raise ValueError(f"{LETTER_ENV}={letter!r} must be a single character")
    count = answer.lower().count(letter.lower())
    critique = f'Use the letter "{letter}" more: it appears {count} time(s).'
    return _same_scores(critique, _clamp(count - 3))
