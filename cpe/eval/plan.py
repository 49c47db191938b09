"""What an evaluation will do, worked out from the config in seconds, before Ray: the
eval set, the policies, the reference, the checks that would otherwise fail after
engines started, and the cache folder with its settings."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cpe.config import CPEConfig
from cpe.data.records import Record
from cpe.eval.answers import PolicyAnswerer
from cpe.eval.evaluation import EvalSettings, Evaluation
from cpe.eval.judges import judge_description
from cpe.eval.policies import PolicySpec, parse_policies, parse_policy
from cpe.eval.sets import load_eval_set, reference_from_dataset, reference_from_file
from cpe.models.paths import check_model_path
from cpe.prompts import PromptSet

INITIAL = "initial"
DATASET = "dataset"
MAX_LISTED = 3


@dataclass(frozen=True)
class Reference:
    name: str  # names the judgment caches: judgments/<policy>-vs-<name>.jsonl
    description: str
    policy: PolicySpec | None = None  # answers generated like a policy's
    fixed: Mapping[str, str] | None = None  # answers given (dataset or file)

    def texts(self, evaluation: Evaluation) -> Mapping[str, str]:
        """The reference answer of every record."""
        return self.fixed if self.fixed is not None else evaluation.answer_texts(self.policy.name)


@dataclass(frozen=True)
class EvalPlan:
    evaluation: Evaluation
    policies: list[PolicySpec]
    reference: Reference

    @property
    def generated(self) -> list[PolicySpec]:
        """Every policy whose answers are generated, the reference first."""
        ref = self.reference.policy
        return list(self.policies) if ref is None else [ref, *self.policies]


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
        fixed = reference_from_file(spec, records)
        return Reference(Path(spec).stem, f"outputs file {spec}", fixed=fixed)
    policy = parse_policy(spec, "eval.reference")
    return Reference(policy.name, f"policy {spec}", policy=policy)


def eval_set_name(data_path: str) -> str:
    return data_path.replace(":", "-") if data_path.startswith("bundled:") else Path(data_path).stem


def output_folder(cfg: CPEConfig, policies: list[PolicySpec]) -> Path:
    """``eval.output_dir``, else ``<run>/eval/<set>`` when the first policy is a run folder
    (where ``cpe.report`` finds it), else ``runs/eval-<set>-<time>``."""
    e = cfg.eval
    if e.output_dir:
        return Path(e.output_dir)
    name = eval_set_name(e.data_path)
    if policies and (Path(policies[0].path) / "checkpoints").is_dir():
        return Path(policies[0].path) / "eval" / name
    return Path("runs") / f"eval-{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def answer_meta(cfg: CPEConfig, policy: PolicySpec) -> dict[str, Any]:
    """The settings an answer cache's rows were sampled with."""
    r, o = cfg.rollout, cfg.prompts.overrides
    return {
        "model": policy.model_path,
        "eval_set": cfg.eval.data_path,
        "temperature": r.eval_temperature,
        "top_p": r.top_p,
        "max_new_tokens": r.max_new_tokens,
        "seed": r.seed,
        "prompts": cfg.prompts.set,
        "overrides": [o.policy_system, o.policy_user, o.brief_suffix, o.detailed_suffix, o.choice],
    }


def judgment_meta(cfg: CPEConfig, reference: Reference) -> dict[str, Any]:
    j = cfg.eval.judge
    return {
        "judge": judge_description(j),
        "eval_set": cfg.eval.data_path,
        "reference": reference.description,
        "both_orders": j.both_orders,
        "max_prompt_tokens": j.max_prompt_tokens,
        "prompts": cfg.prompts.set,
        "judge_template": cfg.prompts.overrides.judge,
    }


def grm_description(cfg: CPEConfig) -> str:
    g = cfg.grm
    if g.backend == "openai":
        return f"openai:{g.openai.base_url}#{g.openai.model}"
    return f"{g.backend}:{g.python_function if g.backend == 'python' else cfg.model.grm.path}"


def score_meta(cfg: CPEConfig) -> dict[str, Any]:
    g = cfg.grm
    return {
        "grm": grm_description(cfg),
        "eval_set": cfg.eval.data_path,
        "mode": g.mode,
        "weights": list(g.weights),
        "score_temperature": g.score_temperature,
        "prompts": cfg.prompts.set,
        "grm_template": cfg.prompts.overrides.grm,
    }


def check_engines(cfg: CPEConfig, judge: bool, grm: bool) -> None:
    """The GRM pool exists when a vLLM judge or GRM needs it; their models are findable."""
    from cpe.reward.pools import runs_grm_model

    uses_pool = (judge and cfg.eval.judge.backend == "vllm") or (
        grm and runs_grm_model(cfg.grm.backend)
    )
    if uses_pool and cfg.cluster.pools.grm.engines < 1:
        raise ValueError(
            "cluster.pools.grm.engines: 0, but the vLLM judge / the GRM runs on the GRM pool"
        )
    if judge and cfg.eval.judge.backend == "vllm":
        check_model_path(cfg.eval.judge.model, "eval.judge.model")


def policy_tokenizer(cfg: CPEConfig, policy: PolicySpec) -> Any:
    """The tokenizer of a policy (a fixture is built here, once)."""
    from transformers import AutoTokenizer

    from cpe.models.paths import resolve_model_path

    path = resolve_model_path(policy.model_path, cfg.model.cache_dir, "eval.policies")
    return AutoTokenizer.from_pretrained(path)


class Prompted(Protocol):
    def prompt_ids(self, record: Record, variant: str) -> list[int]: ...


def check_prompt_lengths(
    cfg: CPEConfig,
    policies: Sequence[PolicySpec],
    evaluation: Evaluation,
    answerer_for: Callable[[Any], Prompted],
    hint: str = "",
) -> None:
    """Every prompt each policy will get (each variant too) fits
    ``rollout.max_prompt_tokens``; ``answerer_for(tokenizer)`` builds the prompts."""
    limit = cfg.rollout.max_prompt_tokens
    for spec in policies:
        answerer = answerer_for(policy_tokenizer(cfg, spec))
        over = [
            (r.id, v, n)
            for v in evaluation.variants
            for r in evaluation.records
            if (n := len(answerer.prompt_ids(r, v))) > limit
        ]
        if over:
            shown = ", ".join(f"{rid!r} ({v}: {n} tokens)" for rid, v, n in over[:MAX_LISTED])
            raise ValueError(
                f"rollout.max_prompt_tokens: {len(over)} eval prompts of {spec.name} are longer "
                f"than rollout.max_prompt_tokens={limit}: {shown}{hint}"
            )


def plan_eval(cfg: CPEConfig, progress: bool = True) -> EvalPlan:
    """Reads and checks everything cheap; opening the caches checks their settings."""
    e = cfg.eval
    if not e.policies:
        raise ValueError("eval.policies: is empty; give one or more policy paths")
    check_engines(cfg, judge=True, grm=e.grm_scores)
    records = load_eval_set(e)
    policies = parse_policies(list(e.policies))
    reference = resolve_reference(cfg, records)
    if any(p.name == reference.name for p in policies):
        raise ValueError(
            f"eval.policies: a policy is named {reference.name!r} like the reference "
            f"(eval.reference={e.reference}); name it NAME=PATH"
        )
    settings = EvalSettings(e.lc_method, e.judge.both_orders, e.probe, progress)
    evaluation = Evaluation(output_folder(cfg, policies), records, settings)
    plan = EvalPlan(evaluation, policies, reference)
    prompts = PromptSet.from_config(cfg.prompts)
    check_prompt_lengths(
        cfg, plan.generated, evaluation, lambda tok: PolicyAnswerer(None, tok, prompts, None)
    )
    for policy in plan.generated:
        evaluation.answers(policy.name, answer_meta(cfg, policy))
    for policy in policies:
        evaluation.judgments(policy.name, reference.name, judgment_meta(cfg, reference))
        if e.grm_scores:
            evaluation.scores(policy.name, score_meta(cfg))
    return plan


def results_header(cfg: CPEConfig, records: int, reference: str, **extra: Any) -> dict[str, Any]:
    """What every results.json starts with."""
    e = cfg.eval
    return {
        "task": e.task,
        "eval_set": e.data_path,
        "records": records,
        "reference": reference,
        "judge": judge_description(e.judge),
        "lc_method": e.lc_method,
        "temperature": cfg.rollout.eval_temperature,
        **extra,
    }
