"""``python -m cpe.bench [--models tiny,smollm2] [--contenders grpo,ppo,cpe,trl]``.

Each model's contenders run one after another on an otherwise idle machine; figures go
to stdout and ``<out>/results.json``, each contender's own log beside them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

from cpe.bench.contenders import run_cpe, run_trl
from cpe.bench.figures import memcpy_mb_per_s, phase_lines, table
from cpe.bench.workload import (
    DEFAULT_VARIANTS,
    MODELS,
    VARIANTS,
    Workload,
    cpe_overrides,
    write_records,
)
from cpe.compose import load_config

CONTENDERS = (*VARIANTS, "trl")
DEFAULT_CONTENDERS = (*DEFAULT_VARIANTS, "trl")  # cpe-grm(-overlap): ask for them


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m cpe.bench", description=__doc__)
    p.add_argument("--models", default="tiny,smollm2", help=f"comma list of {', '.join(MODELS)}")
    p.add_argument(
        "--contenders",
        default=",".join(DEFAULT_CONTENDERS),
        help=f"comma list of {', '.join(CONTENDERS)}",
    )
    p.add_argument("--repeats", type=int, default=3, help="measured steps after one warm-up")
    p.add_argument("--out", type=Path, default=None, help="default runs/bench-<time>")
    args = p.parse_args(argv)
    args.models = args.models.split(",")
    args.contenders = args.contenders.split(",")
    for name, known in (("models", MODELS), ("contenders", CONTENDERS)):
        unknown = [x for x in getattr(args, name) if x not in known]
        if unknown:
            p.error(f"--{name}: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    return args


def bench_model(model: str, contenders: list[str], repeats: int, out: Path) -> dict:
    from cpe.models.paths import resolve_model_path

    w = Workload(model=model, repeats=repeats)
    folder = out / model
    folder.mkdir(parents=True, exist_ok=True)
    records = write_records(folder, w.prompts)
    for name in contenders:  # a bad override stops here, not after an hour of runs
        if name in VARIANTS:
            load_config(cpe_overrides(w, name, records, folder / f"cpe-{name}"))
    results: dict[str, dict] = {}
    for name in contenders:
        started = time.time()
        print(f"[{model}] {name}: {w.steps} steps (log: {folder}/...) ...", flush=True)
        if name == "trl":
            results[name] = run_trl(w, resolve_model_path(f"fixture:{model}"), records, folder)
        else:
            results[name] = run_cpe(w, name, records, folder)
        print(f"[{model}] {name}: done in {time.time() - started:.0f}s", flush=True)
    return {"workload": w.to_json(), "contenders": results, **comparisons(results)}


def comparisons(results: dict[str, dict]) -> dict:
    out: dict = {}
    ok = {k: v for k, v in results.items() if "error" not in v}
    if "grpo" in ok and "trl" in ok:
        trl, cpe = (ok[k]["summary"]["step_s"]["median"] for k in ("trl", "grpo"))
        out["trl_over_cpe_grpo"] = trl / cpe  # > 1: cpe is faster
    if "grpo" in ok and "grpo-lora" in ok:
        lora, full = (ok[k]["summary"]["step_s"]["median"] for k in ("grpo-lora", "grpo"))
        out["lora_over_full"] = lora / full  # < 1: LoRA steps are faster
    if "cpe-grm" in ok and "cpe-grm-overlap" in ok:
        on, off = (ok[k]["summary"]["step_s"]["median"] for k in ("cpe-grm-overlap", "cpe-grm"))
        out["overlap_on_over_off"] = on / off  # < 1: overlapping is faster
    sync = next((v["summary"]["sync"] for v in ok.values() if v["summary"]["sync"]), None)
    if sync and sync.get("sync/mb"):
        out["memcpy_mb_per_s"] = memcpy_mb_per_s(sync["sync/mb"])
    return out


def report(model: str, result: dict) -> list[str]:
    contenders = result["contenders"]
    lines = [f"== {model}: {json.dumps(result['workload'])}", *table(contenders)]
    if "trl_over_cpe_grpo" in result:
        lines.append(f"TRL-GRPO / cpe-GRPO median step: {result['trl_over_cpe_grpo']:.2f}x")
    if "lora_over_full" in result:
        lines.append(f"GRPO LoRA / full median step: {result['lora_over_full']:.2f}x")
    if "overlap_on_over_off" in result:
        lines.append(f"CPE with a vLLM GRM, overlap on / off: {result['overlap_on_over_off']:.2f}x")
    lines.append("phase shares of the step (cpe; 'other' is clocked between phases):")
    for name, r in contenders.items():
        if "error" not in r:
            lines += phase_lines(name, r["summary"])
    for name, r in contenders.items():
        sync = r.get("summary", {}).get("sync", {})
        if sync.get("sync/mb"):
            step = r["summary"]["step_s"]["median"]
            lines.append(
                f"  sync {name}: {sync['sync/mb']:.0f} MiB in {sync['sync/transfer_s']:.2f}s "
                f"({sync.get('sync/mb_per_s', 0):.0f} MiB/s; memcpy {result.get('memcpy_mb_per_s', 0):.0f}"
                f" MiB/s), {100 * sync['sync/transfer_s'] / step:.1f}% of the step; "
                f"check {sync.get('sync/check_s', 0):.2f}s"
            )
    for name, r in contenders.items():
        if "memory" in r:
            parts = ", ".join(
                f"{k} {v:.2f}" for k, v in r["memory"]["peak_by_process_gib"].items() if v > 0.05
            )
            lines.append(f"  peak RSS GiB {name}: {parts}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out or Path("runs") / f"bench-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for model in args.models:
        results[model] = bench_model(model, args.contenders, args.repeats, out)
        (out / "results.json").write_text(json.dumps(results, indent=1))
    print()
    for model, result in results.items():
        print("\n".join(report(model, result)), end="\n\n")
    print(f"results: {out / 'results.json'}")
    failed = [
        f"{m}/{n}" for m, r in results.items() for n, c in r["contenders"].items() if "error" in c
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
