"""Per-step figures of one contender, their summary, and the printed table."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

SYNC_KEYS = ("sync/transfer_s", "sync/mb", "sync/mb_per_s", "sync/check_s", "sync/engine_load_s")


@dataclass
class Step:
    seconds: float
    generated_tokens: float
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    sync: dict[str, float] = field(default_factory=dict)


def steps_from_metrics(rows: list[dict]) -> list[Step]:
    """cpe's metrics.jsonl rows -> steps (``time/step`` is the row's whole window)."""
    steps = []
    for row in rows:
        phases = {
            k.removeprefix("time/"): float(v)
            for k, v in row.items()
            if k.startswith("time/") and k != "time/step"
        }
        sync = {k: float(row[k]) for k in SYNC_KEYS if k in row}
        steps.append(
            Step(
                float(row["time/step"]), float(row.get("perf/generated_tokens", 0.0)), phases, sync
            )
        )
    return steps


def summarise(steps: list[Step], warmup: int) -> dict:
    """min/median/max step seconds after ``warmup`` steps, generated tokens/s, mean phase
    shares of the step, and mean sync figures."""
    measured = steps[warmup:] or steps
    seconds = [s.seconds for s in measured]
    total = sum(seconds)
    phases = sorted({p for s in measured for p in s.phases})
    sync_keys = sorted({k for s in measured for k in s.sync})
    return {
        "steps_measured": len(measured),
        "step_s": {
            "min": min(seconds),
            "median": statistics.median(seconds),
            "max": max(seconds),
        },
        "gen_tokens_per_s": sum(s.generated_tokens for s in measured) / total if total else 0.0,
        "phase_share": {p: sum(s.phases.get(p, 0.0) for s in measured) / total for p in phases},
        "phase_s": {p: statistics.mean(s.phases.get(p, 0.0) for s in measured) for p in phases},
        "sync": {k: statistics.mean(s.sync[k] for s in measured if k in s.sync) for k in sync_keys},
    }


def memcpy_mb_per_s(mb: float, repeats: int = 3) -> float:
    """A plain in-memory copy of ``mb`` MiB on this machine: the ceiling a weight sync
    between processes on one host is compared with."""
    src = torch.empty(int(mb * 2**20), dtype=torch.uint8).fill_(1)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - started)
    return mb / best


def table(results: dict[str, dict]) -> list[str]:
    """One line per contender: step time, tokens/s, memory."""
    lines = [f"{'contender':<22}{'step s (min/med/max)':>26}{'gen tok/s':>11}{'peak RSS GiB':>14}"]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"{name:<22}  failed: {r['error']}")
            continue
        s = r["summary"]["step_s"]
        span = f"{s['min']:.1f}/{s['median']:.1f}/{s['max']:.1f}"
        lines.append(
            f"{name:<22}{span:>26}{r['summary']['gen_tokens_per_s']:>11.1f}"
            f"{r['memory']['peak_total_gib']:>14.2f}"
        )
    return lines


def phase_lines(name: str, summary: dict) -> list[str]:
    shares = summary["phase_share"]
    if not shares:
        return []
    parts = [f"{p} {100 * v:.0f}%" for p, v in sorted(shares.items(), key=lambda kv: -kv[1])]
    return [f"  {name}: " + ", ".join(parts)]
