"""The GRM output format: writing it, and the regex that forces it under guided decoding.

The format is ``<critique>…</critique>`` followed by a ``<scores>`` block with one
``Name: <integer>`` line per dimension, the shape :func:`cpe.algo.parse_grm_output`
reads and the default rubric asks for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cpe.prompts import CRITIQUE_TAG, DIMENSIONS, SCORE_MAX, SCORE_MIN, SCORES_TAG

# Every sampled token emits at least one character, so a critique of at most
# `max_tokens - overhead` characters cannot run past max_tokens; the +1 is the EOS
# token the grammar forces after `</scores>`.
_EOS_TOKENS = 1


def format_grm_output(
    critique: str, scores: Sequence[int], dimensions: Sequence[str] = DIMENSIONS
) -> str:
    """GRM-format text for ``critique`` and one integer score per dimension."""
    if len(scores) != len(dimensions):
        raise ValueError(
            f"need {len(dimensions)} scores ({', '.join(dimensions)}), got {len(scores)}"
        )
    lines = [f"{name}: {int(score)}" for name, score in zip(dimensions, scores, strict=True)]
    body = "\n".join(lines)
    return (
        f"<{CRITIQUE_TAG}>\n{critique.strip()}\n</{CRITIQUE_TAG}>\n"
        f"<{SCORES_TAG}>\n{body}\n</{SCORES_TAG}>"
    )


def _score_pattern() -> str:
    if SCORE_MIN != -5 or SCORE_MAX != 5:
        raise ValueError(
            f"the guided regex assumes scores in [-5, 5], not [{SCORE_MIN}, {SCORE_MAX}]"
        )
    return "-?[0-5]"


def build_grm_regex(max_critique_chars: int, dimensions: Sequence[str] = DIMENSIONS) -> str:
    """Regex for a well-formed GRM output whose critique has 1..``max_critique_chars`` chars.

    The critique may contain anything but ``<`` (so it cannot open a tag early); the
    scores block is fixed: one ``Name: -?[0-5]`` line per dimension, nothing after it.
    Uses only syntax that both Python ``re`` and vLLM's structured-output backends accept.
    """
    if max_critique_chars < 1:
        raise ValueError(f"max_critique_chars must be >= 1, got {max_critique_chars}")
    for name in dimensions:
        if not re.fullmatch(r"[A-Za-z]+", name):
            raise ValueError(f"dimension name {name!r} must be letters only")
    score = _score_pattern()
    lines = "".join(rf"{name}: {score}\n" for name in dimensions)
    return (
        rf"<{CRITIQUE_TAG}>[^<]{{1,{max_critique_chars}}}</{CRITIQUE_TAG}>\n"
        rf"<{SCORES_TAG}>\n{lines}</{SCORES_TAG}>"
    )


def critique_char_budget(max_new_tokens: int, dimensions: Sequence[str] = DIMENSIONS) -> int:
    """Largest critique length (chars) for which a guided output always fits ``max_new_tokens``.

    Assumes the worst case of one character per token; the fixed tags and score lines
    (at their longest, ``-5``) are subtracted first.
    """
    skeleton = format_grm_output("", [SCORE_MIN] * len(dimensions), dimensions)
    budget = max_new_tokens - len(skeleton) - _EOS_TOKENS
    if budget < 1:
        raise ValueError(
            f"grm.max_new_tokens={max_new_tokens} leaves no room for a critique under guided "
            f"decoding; the fixed format alone needs {len(skeleton) + _EOS_TOKENS + 1} tokens"
        )
    return budget


def grm_regex_for(max_new_tokens: int, max_critique_chars: int | None = None) -> str:
    """The guided regex for a token budget; ``max_critique_chars`` overrides the safe bound."""
    return build_grm_regex(max_critique_chars or critique_char_budget(max_new_tokens))
