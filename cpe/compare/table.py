"""The comparison's table: each run's last training step and its evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# (key, header) of comparison.md, in order.
COLUMNS = (
    ("final_reward", "final reward (own RM)"),
    ("train_length_tokens", "train length"),
    ("win_rate", "win rate vs start"),
    ("win_rate_se", "± se"),
    ("lc_win_rate", "LC win rate"),
    ("length_tokens", "eval length"),
    ("persona_mention_share", "persona mention"),
    ("name_address_share", "by name"),
    ("grm_reward", "GRM reward"),
    ("train_seconds", "train s"),
)
EVAL_KEYS = (
    "win_rate",
    "win_rate_se",
    "lc_win_rate",
    "length_tokens",
    "persona_mention_share",
    "name_address_share",
    "grm_reward",
)


def last_step(run_dir: Path) -> dict[str, Any]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1]) if lines else {}


def comparison_rows(out: Path, runs: list[str], seconds: dict[str, float]) -> dict[str, dict]:
    """Per run: the reward its own reward model gave the last step's answers (a BT
    model's normalised score is not on the GRM's scale: compare runs by the eval
    columns), training answer length, and the eval metrics vs the starting policy."""
    results = json.loads((out / "eval" / "results.json").read_text())["policies"]
    rows = {}
    for run in runs:
        last = last_step(out / run)
        row = {
            "final_reward": last.get("original/reward_mean"),
            "train_length_tokens": last.get("original/length_tokens"),
            "steps": last.get("step"),
            "train_seconds": seconds.get(run),
        }
        evaluated = results.get(run, {})
        row |= {key: evaluated.get(key) for key in EVAL_KEYS}
        rows[run] = row
    return rows


def markdown(rows: dict[str, dict], stage_seconds: dict[str, float]) -> str:
    present = [(k, h) for k, h in COLUMNS if any(r.get(k) is not None for r in rows.values())]
    lines = ["| run | " + " | ".join(h for _, h in present) + " |"]
    lines.append("|---" * (len(present) + 1) + "|")
    for run, row in rows.items():
        lines.append(f"| {run} | " + " | ".join(_cell(row.get(k)) for k, _ in present) + " |")
    lines += ["", "| stage | wall s |", "|---|---|"]
    lines += [f"| {name} | {s:.0f} |" for name, s in stage_seconds.items()]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
