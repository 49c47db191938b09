"""Small supervised data sets written by the tests, and the tiny preset for cpe.sft."""

from __future__ import annotations

import json
import random
from pathlib import Path

from cpe.prompts.render import grm_messages
from cpe.reward.format import format_grm_output

GOOD_WORDS = ["clear", "kind", "warm", "useful", "careful", "friendly"]
BAD_WORDS = ["zzz", "qqq", "xxx", "vvv", "jjj", "kkk"]


def sft_args(out: Path, *overrides: str) -> list[str]:
    return [
        "experiment=tiny_cpu",
        f"sft.output_dir={out}",
        "sft.model=fixture:tiny",
        "sft.lr=1e-3",
        "sft.max_len=4096",
        "logging.wandb_mode=disabled",
        "logging.progress=false",
        *overrides,
    ]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def grm_rows(records, seed: int) -> list[dict]:
    """GRM SFT examples as cpe.label writes them: the GRM's chat and a teacher's
    critique + scores, here one fixed critique style with scores set by the answer."""
    rng = random.Random(seed)
    rows = []
    for rec in records:
        good = rng.random() < 0.5
        answer = " ".join(rng.choice(GOOD_WORDS if good else BAD_WORDS) for _ in range(6))
        scores = [4, 3, 4] if good else [-2, -3, -1]
        critique = "Helpful and kind." if good else "Not useful at all."
        rows.append(
            {
                "id": f"{rec.id}:a",
                "messages": grm_messages(rec, answer),
                "response": format_grm_output(critique, scores),
            }
        )
    return rows


def pair_rows(records, seed: int) -> list[dict]:
    """A learnable preference set: chosen answers use one vocabulary, rejected another,
    both of random length (so length alone does not decide)."""
    rng = random.Random(seed)
    rows = []
    for rec in records:

        def answer(words):
            return " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))

        row = rec.to_json()
        row.update(chosen=answer(GOOD_WORDS), rejected=answer(BAD_WORDS))
        rows.append(row)
    return rows
