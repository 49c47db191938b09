"""Running each contender in its own process (so memory and threads are its own) and
reading back its per-step figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cpe.bench.figures import Step, steps_from_metrics, summarise
from cpe.bench.memory import PeakMemory
from cpe.bench.workload import Workload, cpe_overrides


def run_process(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> tuple[int, dict]:
    """Runs ``cmd`` with its output in ``log``; returns its exit code and peak memory."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        memory = PeakMemory(proc.pid).start()
        try:
            code = proc.wait()
        finally:
            memory.stop()
    return code, memory.result()


def failure(log: Path, code: int) -> dict:
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    return {"error": f"exit {code}; see {log}: " + " | ".join(tail)}


def run_cpe(w: Workload, variant: str, records: Path, folder: Path) -> dict:
    run_dir = folder / f"cpe-{variant}"
    cmd = [sys.executable, "-m", "cpe.train", *cpe_overrides(w, variant, records, run_dir)]
    log = folder / f"cpe-{variant}.log"
    code, memory = run_process(cmd, log)
    if code != 0:
        return failure(log, code)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return figures(steps_from_metrics(rows), w, memory)


def run_trl(w: Workload, model_path: str, records: Path, folder: Path) -> dict:
    spec = folder / "trl-spec.json"
    out = folder / "trl-steps.json"
    spec.write_text(
        json.dumps(
            {
                "workload": w.to_json(),
                "model_path": model_path,
                "records": str(records),
                "out": str(out),
            }
        )
    )
    log = folder / "trl.log"
    code, memory = run_process([sys.executable, "-m", "cpe.bench.trl_run", str(spec)], log)
    if code != 0:
        return failure(log, code)
    steps = [Step(s["seconds"], s["generated_tokens"]) for s in json.loads(out.read_text())]
    return figures(steps, w, memory)


def figures(steps: list[Step], w: Workload, memory: dict) -> dict:
    return {
        "steps_s": [round(s.seconds, 2) for s in steps],
        "summary": summarise(steps, w.warmup_steps),
        "memory": memory,
    }
