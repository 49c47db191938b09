"""``report.html``: one self-contained page (no external resources) comparing runs.

Named ``page`` rather than ``html`` so that ``import html`` here is plainly the stdlib.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cpe.report.runs import EvalResult, Run, differing_keys, latest
from cpe.report.table import fmt

# Shown for a single run, where there is nothing to compare; absent keys are skipped.
KEY_SETTINGS = (
    "name",
    "model.policy.path",
    "model.grm.path",
    "data.train_path",
    "algorithm.mode",
    "algorithm.advantage",
    "algorithm.policy_loss",
    "algorithm.selection",
    "algorithm.edit_ratio",
    "grm.backend",
    "grm.mode",
    "grm.weights",
    "rollout.n",
    "rollout.max_new_tokens",
    "learner.actor_lr",
    "learner.critic_lr",
    "trainer.total_steps",
    "trainer.rollout_batch_prompts",
    "trainer.eval_every",
    "cluster.device",
)
# Columns of an eval table in this order; other scalar keys follow by name.
EVAL_COLUMNS = (
    "win_rate",
    "win_rate_se",
    "lc_win_rate",
    "lc_win_rate_se",
    "judged",
    "invalid",
    "length_tokens",
    "length_chars",
    "persona_mention_share",
    "name_address_share",
)
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f0f0f0; }
.note { color: #666; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
"""


def render(runs: Sequence[Run], images: Iterable[Path]) -> str:
    body = [
        "<h1>cpe report</h1>",
        _runs_section(runs),
        _config_section(runs),
        _metrics_section(runs),
        _evals_section(runs),
        _plots_section(images),
    ]
    title = "cpe report: " + ", ".join(r.name for r in runs)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return "null" if value is None else fmt(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    lines = ["<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _runs_section(runs: Sequence[Run]) -> str:
    rows = [
        [r.name, str(r.path), fmt(r.last_step), _cell(r.summary.get("wall_s", "-"))] for r in runs
    ]
    return "<h2>Runs</h2>" + _table(["run", "folder", "last step", "wall s"], rows)


def _config_section(runs: Sequence[Run]) -> str:
    if len(runs) == 1:
        config = runs[0].config
        if not config:
            return "<h2>Settings</h2><p class='note'>no config.yaml</p>"
        rows = [[k, _cell(config[k])] for k in KEY_SETTINGS if k in config]
        return "<h2>Settings</h2>" + _table(["key", "value"], rows)
    keys = differing_keys([r.config for r in runs])
    if not keys:
        return "<h2>Config differences</h2><p class='note'>the configs are identical</p>"
    rows = [[k, *(_cell(r.config[k]) if k in r.config else "-" for r in runs)] for k in keys]
    return "<h2>Config differences</h2>" + _table(["key", *(r.name for r in runs)], rows)


def _metrics_section(runs: Sequence[Run]) -> str:
    values = [latest(r.rows) for r in runs]
    keys = sorted({k for v in values for k in v})
    if not keys:
        return "<h2>Last-step metrics</h2><p class='note'>no metrics logged</p>"
    rows = [
        [k, *(_latest_cell(v.get(k), r.last_step) for v, r in zip(values, runs, strict=True))]
        for k in keys
    ]
    note = "<p class='note'>a value not logged at the last step shows the step it is from</p>"
    return "<h2>Last-step metrics</h2>" + note + _table(["metric", *(r.name for r in runs)], rows)


def _latest_cell(found: tuple[Any, Any] | None, last_step: Any) -> str:
    if found is None:
        return "-"
    step, value = found
    return _cell(value) if step == last_step else f"{_cell(value)} (step {step})"


def _evals_section(runs: Sequence[Run]) -> str:
    parts = [_eval_block(run, ev) for run in runs for ev in run.evals]
    return "<h2>Evaluations</h2>" + ("\n".join(parts) or "<p class='note'>none</p>")


def _eval_block(run: Run, ev: EvalResult) -> str:
    name = ev.data.get("name") or ev.path.parent.name
    info = [(k, v) for k, v in ev.data.items() if k != "policies" and _scalar(v)]
    facts = "; ".join(f"{k}: {_cell(v)}" for k, v in info)
    columns = eval_columns(ev.policies.values())
    rows = [[p, *(_cell(m.get(c)) for c in columns)] for p, m in ev.policies.items()]
    return f"<h3>{_e(run.name)} / {_e(name)}</h3><p class='note'>{_e(facts)}</p>" + _table(
        ["policy", *columns], rows
    )


def eval_columns(policies: Iterable[dict[str, Any]]) -> list[str]:
    """Every scalar key of any policy: the known ones first, then the rest by name."""
    keys = {k for p in policies for k, v in p.items() if _scalar(v)}
    known = [k for k in EVAL_COLUMNS if k in keys]
    return known + sorted(keys - set(known))


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _plots_section(images: Iterable[Path]) -> str:
    tags = [
        f"<figure><img alt='{_e(p.stem)}' src='data:image/png;base64,"
        f"{base64.b64encode(p.read_bytes()).decode('ascii')}'></figure>"
        for p in images
    ]
    return "<h2>Plots</h2>" + ("\n".join(tags) or "<p class='note'>no metrics to plot</p>")
