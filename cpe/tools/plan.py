"""Per-GPU memory of each pool of a config, as the start-up check estimates it.

    python -m cpe.tools.plan experiment=qwen2.5-7b
    python -m cpe.tools.plan experiment=qwen2.5-14b cluster.pools.value.ranks=2

Prints one row per pool (GiB per GPU, by part) and whether it fits; exit status 1 when a
pool does not fit, 2 on a config error. Estimates for sizing (cpe.cluster.memory).
"""

from __future__ import annotations

import sys

from cpe.cluster.memory import kv_capacity_tokens
from cpe.cluster.memory_plan import pool_needs
from cpe.compose import load_config, one_line_error
from cpe.report.table import aligned

PARTS = ("weights", "grads", "optimizer", "activations", "logits", "kv_one_sequence", "runtime")


def table(overrides: list[str]) -> tuple[list[str], bool]:
    cfg = load_config(overrides)
    if cfg.cluster.device != "gpu":
        return [f"cluster.device={cfg.cluster.device}: the planner sizes GPU pools only"], True
    rows, fits = [], True
    for need, shape in pool_needs(cfg):
        fits &= need.shortfall_gib == 0
        row = [need.pool, str(need.gpus)]
        row += [f"{need.parts[p]:.1f}" if p in need.parts else "-" for p in PARTS]
        row += [f"{need.total_gib:.1f}", f"{need.budget_gib:.1f}"]
        if "kv_one_sequence" in need.parts:
            tp = getattr(cfg.cluster.pools, need.pool).devices_per_engine
            row.append(f"KV {kv_capacity_tokens(need, shape, tp):,} tokens/engine")
        else:
            row.append("fits" if need.shortfall_gib == 0 else f"{need.shortfall_gib:.1f} short")
        rows.append(row)
    header = ["pool", "GPUs", *PARTS, "total", "budget", ""]
    gpus = sum(int(r[1]) for r in rows)
    lines = [f"# {' '.join(overrides) or '(defaults)'}: {gpus} GPUs of "
             f"{cfg.cluster.gpu_memory_gib:g} GiB, GiB per GPU"]  # fmt: skip
    return [*lines, aligned([header, *rows])], fits


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    try:
        lines, fits = table(args)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one actionable line
        print(f"config error: {one_line_error(exc)}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
