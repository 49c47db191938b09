"""``python -m cpe.compare [key=value ...]``: PPO on a Bradley-Terry reward, PPO on the
GRM and CPE, trained on the same data, seed and budget, then evaluated against the
starting policy and reported.

The overrides go to every stage (``experiment=...``, ``trainer.total_steps=...``); the
``compare`` node says which runs and where. Writes ``comparison.md`` / ``.json`` and
``stages.json`` (wall time of each stage) into ``compare.output_dir``; run it again with
that folder to continue after a stop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cpe.compare.stages import Stage, check_stages, plan_stages
from cpe.compare.table import comparison_rows, markdown
from cpe.compose import compose, one_line_error, to_typed
from cpe.validate import validate

STAGES_FILE = "stages.json"


def main(argv: list[str] | None = None) -> int:
    overrides = sys.argv[1:] if argv is None else argv
    try:
        cfg = to_typed(compose(overrides))
        validate(cfg)
    except Exception as exc:  # noqa: BLE001 - report one actionable line, no traceback
        print(f"config error: {one_line_error(exc)}", file=sys.stderr)
        return 2
    stages = plan_stages(cfg, overrides)
    try:
        check_stages(stages)
    except ValueError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    out = Path(cfg.compare.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    seconds = _read_seconds(out)
    for stage in stages:
        if stage.done():
            print(f"== {stage.name}: done ({stage.output})", file=sys.stderr)
            continue
        code = _run(stage, out, seconds)
        if code != 0:
            print(
                f"compare: stage {stage.name} (python -m {stage.module}) failed with exit code "
                f"{code}; fix it and run the same command with compare.output_dir={out} "
                "to continue",
                file=sys.stderr,
            )
            return code
    _report(cfg.compare.runs, out, seconds)
    return 0


def _run(stage: Stage, out: Path, seconds: dict[str, float]) -> int:
    print(f"== {stage.name}: python -m {stage.module} {' '.join(stage.args)}", file=sys.stderr)
    started = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", stage.module, *stage.args], env=os.environ)
    if code == 0:
        seconds[stage.name] = round(time.perf_counter() - started, 1)
        (out / STAGES_FILE).write_text(json.dumps(seconds, indent=1))
    return code


def _read_seconds(out: Path) -> dict[str, float]:
    path = out / STAGES_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _report(runs: list[str], out: Path, seconds: dict[str, float]) -> None:
    from cpe.report.cli import main as report_main

    report_main([*(str(out / run) for run in runs), "--out", str(out / "report"), "--quiet"])
    rows = comparison_rows(out, runs, seconds)
    (out / "comparison.json").write_text(json.dumps({"runs": rows, "stages": seconds}, indent=1))
    table = markdown(rows, seconds)
    (out / "comparison.md").write_text(table)
    print(table)
    print(f"comparison: {out / 'comparison.md'}; plots: {out / 'report'}; eval: {out / 'eval'}")


if __name__ == "__main__":
    sys.exit(main())
