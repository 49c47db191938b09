"""Small benchmark files in their published layouts, for the eval task tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

CONTEXT = [
    {"role": "system", "content": "Current user persona: likes jazz."},
    {"role": "user", "content": "I started learning the saxophone."},
    {"role": "assistant", "content": "Great choice!"},
    {"role": "user", "content": "Actually I switched to piano."},
]


def write_persona_mem(folder: Path, questions: int = 4) -> Path:
    """``questions_4k.csv`` + ``shared_contexts_4k.jsonl``; returns the CSV path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shared_contexts_4k.jsonl").write_text(json.dumps({"ctx-a": CONTEXT}) + "\n")
    path = folder / "questions_4k.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "question_id",
                "question_type",
                "question",
                "correct_answer",
                "all_options",
                "shared_context_id",
                "end_index_in_shared_context",
            ]
        )
        for i in range(questions):
            kind = "recall" if i % 2 else "latest"
            options = str(["(a) Saxophone", "(b) Piano", "(c) Drums"])
            writer.writerow(
                [f"q{i}", kind, "Which instrument do I play now?", "(b)", options, "ctx-a", "4"]
            )
    return path


def write_persona_feedback(root: Path) -> Path:
    """persona/all_personas.jsonl + data/{general,spedific}/easy.jsonl, two pairs each."""
    (root / "persona").mkdir(parents=True)
    personas = [
        {"Name": "Ana Silva", "Demographics": {"age": 30}, "Preference": "short answers"},
        {"Name": "Ben Okafor", "Demographics": {"age": 61}, "Preference": "detail"},
    ]
    (root / "persona" / "all_personas.jsonl").write_text(
        "\n".join(json.dumps(p) for p in personas) + "\n"
    )
    for folder in ("general", "spedific"):
        (root / "data" / folder).mkdir(parents=True)
        rows = [
            {
                "user_id": 1,
                "question": f"{folder} question one?",
                "chosen": "good one",
                "reject": "bad one",
            },
            {
                "user_id": 2,
                "question": f"{folder} question two?",
                "chosen": "good two",
                "reject": "bad two",
            },
        ]
        (root / "data" / folder / "easy.jsonl").write_text(
            "\n".join(json.dumps(r) for r in rows) + "\n"
        )
    return root
