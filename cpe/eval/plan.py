"""What an evaluation will do, worked out from the config in seconds, before Ray: the
eval set, the policies, the reference, and the cache folder with its settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpe.config import CPEConfig
from cpe.data.records import Record
from cpe.eval.evaluation import EvalSettings, Evaluation
from cpe.eval.policies import PolicySpec, parse_policies, parse_policy
from cpe.eval.sets import load_eval_set, reference_from_dataset, reference_from_file

INITIAL = "initial"
DATASET = "dataset"


@dataclass(frozen=True)
class Reference:
    name: str  # names the judgment caches: judgments/<policy>-vs-<name>.jsonl
    description: str
    policy: PolicySpec | None = None  # answers generated like a policy's
    fixed: Mapping[str, str] | None = None  # answers given (dataset or file)


@dataclass(frozen=True)
class EvalPlan:
    evaluation: Evaluation
    policies: list[PolicySpec]
    reference: Reference

    @property
    def generated(self) -> list[PolicySpec]:
        """Every policy whose answers are generated, the reference first."""
        ref = self.reference.policy
        if ref is None:
            return list(self.policies)
        return [ref] + [p for p in self.policies if p.name != ref.name]

    def reference_answers(self) -> Mapping[str, str]:
        if self.reference.fixed is not None:
            return self.reference.fixed
        return self.evaluation.answer_texts(self.reference.policy.name)


def resolve_reference(cfg: CPEConfig, records: list[Record]) -> Reference:
    spec = cfg.eval.reference
    if spec == INITIAL:
        policy = parse_policy(f"{INITIAL}={cfg.model.policy.path}", "eval.reference")
        return Reference(INITIAL, f"initial policy {cfg.model.policy.path}", policy=policy)
    if spec == DATASET:
        return Reference(
            DATASET, "the eval set's reference answers", fixed=reference_from_dataset(records)
        )
    if Path(spec).is_file():
        return Reference(
            Path(spec).stem, f"outputs file {spec}", fixed=reference_from_file(spec, records)
        )
    policy = parse_policy(spec, "eval.reference")
    return Reference(policy.name, f"policy {spec}", policy=policy)


def answer_meta(cfg: CPEConfig, policy: PolicySpec) -> dict[str, Any]:
    """The settings an answer cache's rows were sampled with."""
    r = cfg.rollout
    return {
        "model": policy.model_path,
        "temperature": r.eval_temperature,
        "top_p": r.top_p,
        "max_new_tokens": r.max_new_tokens,
        "seed": r.seed,
        "prompts": cfg.prompts.set,
        "policy_user": cfg.prompts.overrides.policy_user,
        "policy_system": cfg.prompts.overrides.policy_system,
    }


def judgment_meta(cfg: CPEConfig, judge: str, reference: Reference) -> dict[str, Any]:
    return {
        "judge": judge,
        "reference": reference.description,
        "both_orders": cfg.eval.judge.both_orders,
        "prompts": cfg.prompts.set,
        "judge_template": cfg.prompts.overrides.judge,
    }


def score_meta(cfg: CPEConfig) -> dict[str, Any]:
    g = cfg.grm
    model = g.python_function if g.backend == "python" else cfg.model.grm.path
    if g.backend == "openai":
        model = f"{g.openai.base_url}#{g.openai.model}"
    return {
        "grm": f"{g.backend}:{model}",
        "mode": g.mode,
        "weights": list(g.weights),
        "score_temperature": g.score_temperature,
        "prompts": cfg.prompts.set,
        "grm_template": cfg.prompts.overrides.grm,
    }


def judge_description(cfg: CPEConfig) -> str:
    j = cfg.eval.judge
    if j.backend == "openai":
        return f"openai:{j.openai.base_url}#{j.openai.model}"
    return f"{j.backend}:{j.model}"


def plan_eval(cfg: CPEConfig, progress: bool = True) -> EvalPlan:
    """Reads and checks everything cheap; opening the caches checks their settings."""
    e = cfg.eval
    if not e.policies:
        raise ValueError("eval.policies: is empty; give one or more policy paths")
    records = load_eval_set(e)
    policies = parse_policies(list(e.policies))
    reference = resolve_reference(cfg, records)
    settings = EvalSettings(e.lc_method, e.judge.both_orders, e.probe, progress)
    evaluation = Evaluation(Path(e.output_dir), records, settings)
    plan = EvalPlan(evaluation, policies, reference)
    for policy in plan.generated:
        evaluation.answers(policy.name, answer_meta(cfg, policy))
    judge = judge_description(cfg)
    for policy in policies:
        evaluation.judgments(policy.name, reference.name, judgment_meta(cfg, judge, reference))
        if e.grm_scores:
            evaluation.scores(policy.name, score_meta(cfg))
    return plan
