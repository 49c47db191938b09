"""A teacher whose scores are written into the answers it grades, and pairs files for it.

An answer containing ``[score K]`` gets K on all three dimensions; one containing
``GARBAGE`` gets an output with no scores (invalid after every re-ask).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cpe.reward.format import format_grm_output

_ANSWER = re.compile(r"<answer>\n(.*?)\n</answer>", re.S)
_SCORE = re.compile(r"\[score (-?\d)\]")
PERSONA = {"occupation": "baker", "interests": ["cycling"]}


def teacher_output(answer: str) -> str:
    if "GARBAGE" in answer:
        return "I would rather not grade this one."
    match = _SCORE.search(answer)
    score = int(match.group(1)) if match else 0
    return format_grm_output(f"Critique of: {answer[:40]}", [score] * 3)


def python_teacher(persona: dict[str, Any], question: str, answer: str) -> str:
    """The grm=python form of the same teacher."""
    return teacher_output(answer)


def answer_in(body: dict[str, Any]) -> str:
    """The graded answer, read back out of a GRM request's chat."""
    return _ANSWER.findall(body["messages"][-1]["content"])[-1]


def pair(pair_id: str, chosen: str, rejected: str) -> dict[str, Any]:
    return {
        "id": pair_id,
        "persona": PERSONA,
        "question": f"Question {pair_id}?",
        "chosen": chosen,
        "rejected": rejected,
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
