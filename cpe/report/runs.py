"""Loading run folders: metrics rows, the flattened config, summary and eval results."""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cpe.trainer.metrics import read_metrics

Row = dict[str, Any]


@dataclass(frozen=True)
class EvalResult:
    """One ``eval/<name>/results.json`` of a run."""

    path: Path
    data: dict[str, Any]

    @property
    def policies(self) -> dict[str, dict[str, Any]]:
        policies = self.data.get("policies")
        if not isinstance(policies, dict):
            return {}
        return {str(k): v for k, v in policies.items() if isinstance(v, dict)}


@dataclass(frozen=True)
class Run:
    name: str
    path: Path
    rows: list[Row]
    config: dict[str, Any] = field(default_factory=dict)  # flattened to dotted keys
    summary: dict[str, Any] = field(default_factory=dict)
    evals: list[EvalResult] = field(default_factory=list)

    @property
    def last_step(self) -> int | None:
        return self.rows[-1].get("step") if self.rows else None


def metrics_path(run_dir: Path) -> Path:
    return run_dir / "metrics.jsonl"


def missing_runs(run_dirs: list[Path]) -> list[Path]:
    """The metrics files that do not exist, so the CLI can fail before writing anything."""
    return [metrics_path(d) for d in run_dirs if not metrics_path(d).exists()]


def load_runs(run_dirs: list[Path]) -> list[Run]:
    names = _names(run_dirs)
    return [load_run(d, n) for d, n in zip(run_dirs, names, strict=True)]


def _names(run_dirs: list[Path]) -> list[str]:
    # Folder names identify runs; two folders of one name (other parents) keep their paths.
    counts = Counter(d.resolve().name for d in run_dirs)
    return [d.resolve().name if counts[d.resolve().name] == 1 else str(d) for d in run_dirs]


def load_run(run_dir: Path, name: str | None = None) -> Run:
    return Run(
        name=name or run_dir.resolve().name,
        path=run_dir,
        rows=read_metrics(metrics_path(run_dir)),
        config=flatten(_read_yaml(run_dir / "config.yaml")),
        summary=_read_json(run_dir / "summary.json") or {},
        evals=load_evals(run_dir),
    )


def load_evals(run_dir: Path) -> list[EvalResult]:
    results = []
    for path in sorted(run_dir.glob("eval/*/results.json")):
        data = _read_json(path)
        if data is not None:
            results.append(EvalResult(path, data))
    return results


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        # A half-written file of a running eval should not cost the whole report.
        print(f"warning: skipping {path}: {exc}", file=sys.stderr)
        return None
    return data if isinstance(data, dict) else None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        print(f"warning: skipping {path}: {exc}", file=sys.stderr)
        return {}
    return data if isinstance(data, dict) else {}


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Dotted keys whose value is not the same in every config (absent counts as a value)."""
    keys = sorted({k for c in configs for k in c})
    absent = object()
    return [k for k in keys if len({_hashable(c.get(k, absent)) for c in configs}) > 1]


def _hashable(value: Any) -> Any:
    return (
        json.dumps(value, sort_keys=True, default=str) if isinstance(value, list | dict) else value
    )


def number(value: Any) -> float | None:
    """A finite int or float as float; anything else (None, bool, str, nan) is no number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def points(rows: list[Row], key: str) -> list[tuple[float, float]]:
    """(step, value) for the rows where ``key`` holds a number."""
    found = []
    for row in rows:
        value, step = number(row.get(key)), number(row.get("step"))
        if value is not None and step is not None:
            found.append((step, value))
    return found


def has_key(rows: list[Row], key: str) -> bool:
    return any(number(row.get(key)) is not None for row in rows)


def latest(rows: list[Row]) -> dict[str, tuple[Any, Any]]:
    """Every key's last non-null value with the step it came from; eval and checkpoint
    keys appear only on some steps, so the last row alone would miss them."""
    found: dict[str, tuple[Any, Any]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "step" and value is not None:
                found[key] = (row.get("step"), value)
    return dict(sorted(found.items()))
