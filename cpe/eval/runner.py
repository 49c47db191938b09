"""``python -m cpe.eval``: one task (``eval.task``, a key of ``EVAL_TASKS``) planned
in seconds before Ray, then run on engines started on demand; the results files are
written last. Only what the eval folder lacks is computed; nothing starts when
everything is cached."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from cpe.config import CPEConfig
from cpe.eval.choice import ChoiceTask
from cpe.eval.host import EngineHost
from cpe.eval.pairwise import PairwiseTask
from cpe.eval.plan import results_header
from cpe.eval.preference import GRMPreferenceTask, JudgePreferenceTask
from cpe.eval.results import Columns, markdown_table


class EvalTask(Protocol):
    def plan(self, cfg: CPEConfig, progress: bool) -> Any:
        """Everything cheap: data read and checked, caches opened (settings checked)."""

    def run(self, cfg: CPEConfig, plan: Any, host: EngineHost) -> dict[str, dict[str, Any]]:
        """Results per evaluated thing (policy, judge or GRM), by name."""

    def reference(self, plan: Any) -> str: ...

    @property
    def columns(self) -> Columns:
        """The results table's (key, header) columns; None: every numeric key."""


#: eval.task -> the task.
EVAL_TASKS: dict[str, EvalTask] = {
    "pairwise": PairwiseTask(),
    "preference_judge": JudgePreferenceTask(),
    "preference_grm": GRMPreferenceTask(),
    "multiple_choice": ChoiceTask(),
}


def plan_task(cfg: CPEConfig) -> Any:
    return EVAL_TASKS[cfg.eval.task].plan(cfg, cfg.logging.progress)


def run_eval(cfg: CPEConfig, plan: Any = None) -> Path:
    """Runs (or completes) the evaluation; returns the results.json path."""
    started = time.time()
    task = EVAL_TASKS[cfg.eval.task]
    plan = plan if plan is not None else task.plan(cfg, cfg.logging.progress)
    with EngineHost(cfg) as host:
        results = task.run(cfg, plan, host)
    ev = plan.evaluation
    header = results_header(
        cfg,
        len(ev.records),
        task.reference(plan),
        name=ev.folder.name,
        seconds=round(time.time() - started, 1),
    )
    path = ev.write(header, results, task.columns)
    print(markdown_table(results, task.columns))
    print(f"results: {path}")
    return path
