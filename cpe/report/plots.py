"""PNG plots of runs' metrics over steps; one figure per file, runs overlaid.

Figures are built with ``matplotlib.figure.Figure`` and saved through the Agg canvas, so
no pyplot state or interactive backend is involved (safe without a display).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cpe.report.runs import Run, has_key, number, points
from cpe.report.table import timing_keys

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))  # one per run


@dataclass(frozen=True)
class Series:
    label: str
    keys: tuple[str, ...]  # the first key a run has is plotted
    err: str | None = None  # key of a standard error drawn as error bars

    def key_for(self, run: Run) -> str | None:
        return next((k for k in self.keys if has_key(run.rows, k)), None)


@dataclass(frozen=True)
class LinePlot:
    file: str
    title: str
    ylabel: str
    series: tuple[Series, ...]


def _dims(dim: str) -> LinePlot:
    return LinePlot(
        f"score_{dim}.png",
        f"GRM {dim} score",
        f"{dim} (mean)",
        (Series("originals", (f"original/{dim}",)), Series("edits", (f"edit/{dim}",))),
    )


LINE_PLOTS = (
    LinePlot(
        "reward.png",
        "Reward",
        "reward (mean)",
        (
            Series("originals", ("original/reward_mean",)),
            Series("edits", ("edit/reward_mean",)),
            Series("selected edits", ("selected_edit/reward_mean",)),
        ),
    ),
    *(_dims(d) for d in ("helpfulness", "personalization", "naturalness")),
    LinePlot(
        "length_tokens.png",
        "Response length",
        "tokens (mean)",
        (
            Series("originals", ("original/length_tokens",)),
            Series("edits", ("edit/length_tokens",)),
        ),
    ),
    LinePlot(
        "grm_invalid.png",
        "Invalid GRM results",
        "share of GRM results invalid",
        (Series("invalid share", ("grm/invalid_rate",)),),
    ),
    LinePlot(
        "selected_edits.png",
        "Selected edits per step",
        "edits in the batch",
        (Series("selected edits", ("batch/selected_edits", "selected_edit/count")),),
    ),
    LinePlot(
        "eval_win_rate.png",
        "Eval win rate against the reference",
        "win rate",
        (
            Series("win rate", ("eval/win_rate",), err="eval/win_rate_se"),
            Series("LC win rate", ("eval/lc_win_rate",), err="eval/lc_win_rate_se"),
        ),
    ),
)


def write_plots(runs: list[Run], out: Path) -> list[Path]:
    written = [line_plot(runs, spec, out) for spec in LINE_PLOTS]
    written += [timing_plot(run, out) for run in runs]
    return [p for p in written if p is not None]


def line_plot(runs: list[Run], spec: LinePlot, out: Path) -> Path | None:
    """Each series of each run as one line; ``None`` (and no file) when no run has any."""
    fig = _figure()
    ax = fig.subplots()
    drawn = 0
    for r, run in enumerate(runs):
        line, marker = _STYLES[r % len(_STYLES)]
        for s, series in enumerate(spec.series):
            key = series.key_for(run)
            if key is None:
                continue
            label = series.label if len(runs) == 1 else f"{run.name}: {series.label}"
            color = _COLORS[s % len(_COLORS)]
            _draw(ax, run, key, series.err, label, color, line, marker)
            drawn += 1
    if not drawn:
        return None
    _finish(ax, spec.title, spec.ylabel)
    return _save(fig, out / spec.file)


def _draw(
    ax: Axes, run: Run, key: str, err: str | None, label: str, color: str, line: str, marker: str
) -> None:
    pts = points(run.rows, key)
    xs, ys = [x for x, _ in pts], [y for _, y in pts]
    style = {"color": color, "linestyle": line, "marker": marker, "label": label, "markersize": 4}
    if err is not None and has_key(run.rows, err):
        by_step = {number(r.get("step")): number(r.get(err)) for r in run.rows}
        yerr = [by_step.get(x) or 0.0 for x in xs]
        ax.errorbar(xs, ys, yerr=yerr, capsize=3, **style)
    else:
        ax.plot(xs, ys, **style)


def timing_plot(run: Run, out: Path) -> Path | None:
    """Seconds per phase as stacked bars, one bar per step (time/step is the bar)."""
    keys = [k for k in timing_keys(run.rows) if k != "time/step"]
    if not keys:
        return None
    steps = [number(r.get("step")) or 0.0 for r in run.rows]
    fig = _figure()
    ax = fig.subplots()
    bottom = [0.0] * len(steps)
    for i, key in enumerate(keys):
        heights = [number(r.get(key)) or 0.0 for r in run.rows]
        color = f"C{i % 10}"
        ax.bar(steps, heights, bottom=bottom, label=key.removeprefix("time/"), color=color)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    # Legend listed top-down like the stack it labels.
    _finish(ax, f"Phase timings: {run.name}", "seconds", reverse=True)
    return _save(fig, out / f"timings_{safe_name(run.name)}.png")


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"


def _figure() -> Figure:
    fig = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(ax: Axes, title: str, ylabel: str, reverse: bool = False) -> None:
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.set_axisbelow(True)
    # Outside the axes: a legend inside hides points once several runs are overlaid.
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), reverse=reverse)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path
