"""PersonaFeedback's native task: does the judge (``eval.task=preference_judge``, both
orders) or the GRM (``preference_grm``, a reward per answer) prefer the chosen answer over
the rejected one? Accuracy overall and per folder/tier; a pair whose verdict or either
GRM score is invalid is counted as invalid and left out, a tie counts one half."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cpe.config import CPEConfig
from cpe.data.records import Record
from cpe.eval.evaluation import EvalSettings, Evaluation
from cpe.eval.grm_scores import fresh_scores
from cpe.eval.host import EngineHost
from cpe.eval.judges import judge_description
from cpe.eval.judging import preference
from cpe.eval.plan import (
    MAX_LISTED,
    Reference,
    check_engines,
    grm_description,
    judgment_meta,
    output_folder,
    score_meta,
)
from cpe.eval.sets import load_eval_set
from cpe.prompts import PromptSet

CHOSEN, REJECTED = "chosen", "rejected"
REJECTED_REFERENCE = Reference(REJECTED, "the rejected answer of each pair")


@dataclass(frozen=True)
class PreferencePlan:
    evaluation: Evaluation
    answers: dict[str, dict[str, str]]  # "chosen" / "rejected" -> record id -> text


def plan_preference(cfg: CPEConfig, progress: bool, judge: bool) -> PreferencePlan:
    e = cfg.eval
    check_engines(cfg, judge=judge, grm=not judge)
    records = load_eval_set(e)
    lacking = [r.id for r in records if not (r.chosen and r.rejected)]
    if lacking:
        shown = ", ".join(repr(i) for i in lacking[:MAX_LISTED])
        raise ValueError(
            f"eval.task={e.task} needs chosen and rejected answers; {len(lacking)} records "
            f"of {e.data_path} lack them (e.g. {shown})"
        )
    settings = EvalSettings(e.lc_method, e.judge.both_orders, False, progress)
    ev = Evaluation(output_folder(cfg, []), records, settings)
    if judge:
        ev.judgments(CHOSEN, REJECTED, judgment_meta(cfg, REJECTED_REFERENCE))
    else:
        for side in (CHOSEN, REJECTED):
            ev.scores(side, score_meta(cfg))
    answers = {
        CHOSEN: {r.id: r.chosen for r in records},
        REJECTED: {r.id: r.rejected for r in records},
    }
    return PreferencePlan(ev, answers)


class JudgePreferenceTask:
    columns = None

    def plan(self, cfg: CPEConfig, progress: bool) -> PreferencePlan:
        return plan_preference(cfg, progress, judge=True)

    def run(self, cfg: CPEConfig, plan: PreferencePlan, host: EngineHost) -> dict[str, Any]:
        ev = plan.evaluation
        cache = ev.judgments(CHOSEN, REJECTED)
        pairs = ev.pairs(plan.answers[CHOSEN], plan.answers[REJECTED])
        if ev.missing_judgments(cache, pairs):
            judge = host.judge(PromptSet.from_config(cfg.prompts))
            ev.judge(cache, pairs, judge, "judge chosen vs rejected")
        outcome = {
            r.id: _from_preference(preference(cache, pairs, r.id, ev.settings.both_orders))
            for r in ev.records
        }
        return {judge_description(cfg.eval.judge): accuracy_by_group(ev.records, outcome)}

    def reference(self, plan: PreferencePlan) -> str:
        return REJECTED_REFERENCE.description


class GRMPreferenceTask:
    columns = None

    def plan(self, cfg: CPEConfig, progress: bool) -> PreferencePlan:
        return plan_preference(cfg, progress, judge=False)

    def run(self, cfg: CPEConfig, plan: PreferencePlan, host: EngineHost) -> dict[str, Any]:
        ev = plan.evaluation
        sides = {side: (ev.scores(side), plan.answers[side]) for side in (CHOSEN, REJECTED)}
        if any(ev.missing_scores(cache, texts) for cache, texts in sides.values()):
            grm = host.grm(PromptSet.from_config(cfg.prompts))
            for side, (cache, texts) in sides.items():
                ev.score(cache, texts, grm, f"GRM {side}")
        rows = {side: fresh_scores(c, ev.records, t) for side, (c, t) in sides.items()}
        outcome = {r.id: _from_scores(rows[CHOSEN][r.id], rows[REJECTED][r.id]) for r in ev.records}
        return {grm_description(cfg): accuracy_by_group(ev.records, outcome)}

    def reference(self, plan: PreferencePlan) -> str:
        return REJECTED_REFERENCE.description


def _from_preference(p: float | None) -> float | None:
    return None if p is None else 1.0 if p > 0.5 else 0.5 if p == 0.5 else 0.0


def _from_scores(
    chosen: Mapping[str, Any] | None, rejected: Mapping[str, Any] | None
) -> float | None:
    if not (chosen and rejected and chosen["valid"] and rejected["valid"]):
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
    groups: dict[str, list[float]] = {}
    valid = []
    for record in records:
        value = outcome[record.id]
        if value is not None:
            valid.append(value)
            groups.setdefault(group(record), []).append(value)
    out: dict[str, Any] = {
        "accuracy": sum(valid) / len(valid) if valid else None,
        "judged": len(valid),
        "invalid": len(records) - len(valid),
    }
    for name, values in groups.items():
        out[f"accuracy {name}"] = sum(values) / len(values)
    return out
