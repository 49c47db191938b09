"""PersonaFeedback's native task (``eval.task=preference_judge`` / ``preference_grm``):
does the judge (both orders) or the GRM (reward of each answer) prefer the chosen answer
over the rejected one? Accuracy overall and per folder/tier; a pair whose verdict or
either GRM score is invalid is counted as invalid and left out, a tie counts one half."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpe.config import CPEConfig
from cpe.data.records import Record
from cpe.eval.cache import JsonlCache
from cpe.eval.evaluation import EvalSettings, Evaluation
from cpe.eval.grm_scores import fill_scores
from cpe.eval.host import EngineHost
from cpe.eval.judging import fill_judgments, preference
from cpe.eval.plan import judge_description, score_meta
from cpe.eval.sets import load_eval_set
from cpe.prompts import PromptSet

CHOSEN, REJECTED = "chosen", "rejected"
MAX_LISTED = 3


@dataclass(frozen=True)
class PreferencePlan:
    evaluation: Evaluation
    answers: dict[str, dict[str, str]]  # "chosen" / "rejected" -> record id -> text
    caches: dict[str, JsonlCache]  # "judge", or "chosen" and "rejected" (GRM scores)


class PreferenceTask:
    columns = None

    def __init__(self, by: str):
        self.by = by  # "judge" | "grm"

    def plan(self, cfg: CPEConfig, progress: bool) -> PreferencePlan:
        e = cfg.eval
        records = load_eval_set(e)
        lacking = [r.id for r in records if not (r.chosen and r.rejected)]
        if lacking:
            shown = ", ".join(repr(i) for i in lacking[:MAX_LISTED])
            raise ValueError(
                f"eval.task={e.task} needs chosen and rejected answers; {len(lacking)} records "
                f"of {e.data_path} lack them (e.g. {shown})"
            )
        settings = EvalSettings(e.lc_method, e.judge.both_orders, False, progress)
        ev = Evaluation(Path(e.output_dir), records, settings)
        if self.by == "judge":
            meta = {
                "judge": judge_description(cfg),
                "both_orders": e.judge.both_orders,
                "judge_template": cfg.prompts.overrides.judge,
            }
            caches = {"judge": ev.judgments(CHOSEN, REJECTED, meta)}
        else:
            caches = {side: ev.scores(side, score_meta(cfg)) for side in (CHOSEN, REJECTED)}
        answers = {
            CHOSEN: {r.id: r.chosen for r in records},
            REJECTED: {r.id: r.rejected for r in records},
        }
        return PreferencePlan(ev, answers, caches)

    def run(self, cfg: CPEConfig, plan: PreferencePlan, host: EngineHost) -> dict[str, Any]:
        ev, prompts = plan.evaluation, PromptSet.from_config(cfg.prompts)
        if self.by == "judge":
            cache = plan.caches["judge"]
            if ev.missing_judgments(CHOSEN, REJECTED):
                fill_judgments(
                    cache,
                    ev.records,
                    plan.answers[CHOSEN],
                    plan.answers[REJECTED],
                    host.judge(prompts),
                    ev.settings.both_orders,
                    "judge chosen vs rejected",
                    ev.progress,
                )
            both = ev.settings.both_orders
            outcome = {r.id: _from_preference(preference(cache, r.id, both)) for r in ev.records}
            return {judge_description(cfg): accuracy_by_group(ev.records, outcome)}
        if any(ev.missing_scores(side) for side in (CHOSEN, REJECTED)):
            grm = host.grm(prompts)
            for side in (CHOSEN, REJECTED):
                texts = plan.answers[side]
                fill_scores(plan.caches[side], ev.records, texts, grm, f"GRM {side}", ev.progress)
        outcome = {r.id: _from_scores(plan.caches, r.id) for r in ev.records}
        return {f"grm:{cfg.grm.backend}": accuracy_by_group(ev.records, outcome)}

    def reference(self, plan: PreferencePlan) -> str:
        return "the rejected answer of each pair"


def _from_preference(p: float | None) -> float | None:
    return None if p is None else 1.0 if p > 0.5 else 0.5 if p == 0.5 else 0.0


def _from_scores(caches: Mapping[str, JsonlCache], record_id: str) -> float | None:
    chosen = caches[CHOSEN].get((record_id,))
    rejected = caches[REJECTED].get((record_id,))
    if not (chosen["valid"] and rejected["valid"]):
        return None
    diff = chosen["reward"] - rejected["reward"]
    return 1.0 if diff > 0 else 0.5 if diff == 0 else 0.0


def group_of(record: Record) -> str:
    parts = [record.meta.get(k) for k in ("folder", "tier")]
    return "/".join(str(p) for p in parts if p) or "all"


def accuracy_by_group(
    records: Sequence[Record],
    outcome: Mapping[str, float | None],
    group: Callable[[Record], str] = group_of,
) -> dict[str, Any]:
    """``accuracy`` over validly judged pairs, ``judged``, ``invalid`` and
    ``accuracy <group>`` per group (in the order groups first appear)."""
    out: dict[str, Any] = {}
    groups: dict[str, list[float]] = {}
    valid = []
    for record in records:
        value = outcome[record.id]
        if value is not None:
            valid.append(value)
            groups.setdefault(group(record), []).append(value)
    out["accuracy"] = sum(valid) / len(valid) if valid else None
    out["judged"] = len(valid)
    out["invalid"] = len(records) - len(valid)
    for name, values in groups.items():
        out[f"accuracy {name}"] = sum(values) / len(values)
    return out
