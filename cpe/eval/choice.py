"""PersonaMem (``eval.task=multiple_choice``): each policy answers every question after
its shared-context conversation; the letter is read from the final answer; accuracy
overall and per ``question_type``.

``eval.data_path`` is a ``questions_*.csv``; its contexts are the ``shared_contexts_*.jsonl``
beside it (the published naming: ``questions_32k.csv`` -> ``shared_contexts_32k.jsonl``).
A conversation longer than ``rollout.max_prompt_tokens`` is an error (at plan time), not
cut: a cut context would change the question.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpe.config import CPEConfig
from cpe.data.persona_mem import (
    PersonaMemItem,
    accuracy_by_type,
    load_persona_mem,
    read_answer_letter,
)
from cpe.data.records import Record
from cpe.eval.answers import DEFAULT_VARIANT, PolicyAnswerer, eval_sampling
from cpe.eval.evaluation import EvalSettings, Evaluation
from cpe.eval.host import EngineHost
from cpe.eval.plan import answer_meta, check_prompt_lengths, output_folder
from cpe.eval.policies import PolicySpec, parse_policies
from cpe.prompts import PromptSet, choice_messages, to_token_ids
from cpe.protocols import Generator
from cpe.types import Generation, SamplingSpec


def contexts_path(questions_csv: str) -> Path:
    path = Path(questions_csv)
    name = path.stem.replace("questions", "shared_contexts", 1) + ".jsonl"
    contexts = path.with_name(name)
    if not path.stem.startswith("questions") or not contexts.is_file():
        raise FileNotFoundError(
            f"eval.data_path={questions_csv!r}: expected its contexts beside it as {contexts}"
        )
    return contexts


@dataclass(frozen=True)
class ChoicePlan:
    evaluation: Evaluation
    items: dict[str, PersonaMemItem]
    policies: list[PolicySpec]


class ChoiceAnswerer(PolicyAnswerer):
    """A policy answering each question after its conversation; rows carry the letter
    read from the answer."""

    def __init__(
        self,
        engine: Generator | None,
        tokenizer: Any,
        prompts: PromptSet,
        spec: SamplingSpec | None,
        items: dict[str, PersonaMemItem],
    ):
        super().__init__(engine, tokenizer, prompts, spec)
        self.items = items

    def prompt_ids(self, record: Record, variant: str = DEFAULT_VARIANT) -> list[int]:
        item = self.items[record.id]
        messages = choice_messages(list(item.messages), item.question, item.options, self.prompts)
        return to_token_ids(self.tokenizer, messages)

    def row(self, record: Record, variant: str, generation: Generation) -> dict[str, Any]:
        return {
            **super().row(record, variant, generation),
            "letter": read_answer_letter(generation.text),
        }


class ChoiceTask:
    columns = None

    def plan(self, cfg: CPEConfig, progress: bool) -> ChoicePlan:
        e = cfg.eval
        if not e.policies:
            raise ValueError("eval.policies: is empty; give one or more policy paths")
        items = load_persona_mem(e.data_path, contexts_path(e.data_path))
        items = items[: e.max_records] if e.max_records else items
        records = [
            Record(id=i.id, persona={}, question=i.question, meta={"type": i.question_type})
            for i in items
        ]
        settings = EvalSettings(e.lc_method, e.judge.both_orders, False, progress)
        policies = parse_policies(list(e.policies))
        ev = Evaluation(output_folder(cfg, policies), records, settings)
        plan = ChoicePlan(ev, {i.id: i for i in items}, policies)
        for policy in policies:
            ev.answers(policy.name, {**answer_meta(cfg, policy), "task": "multiple_choice"})
        prompts = PromptSet.from_config(cfg.prompts)
        check_prompt_lengths(
            cfg,
            policies,
            ev,
            lambda tok: ChoiceAnswerer(None, tok, prompts, None, plan.items),
            hint="; raise it (and the model's context) or pick a shorter-context split",
        )
        return plan

    def run(self, cfg: CPEConfig, plan: ChoicePlan, host: EngineHost) -> dict[str, Any]:
        ev = plan.evaluation
        results = {}
        for spec in plan.policies:
            if ev.missing_answers(spec.name):
                engines, tokenizer = host.policy(spec.model_path)
                prompts, sampling = PromptSet.from_config(cfg.prompts), eval_sampling(cfg.rollout)
                answerer = ChoiceAnswerer(engines, tokenizer, prompts, sampling, plan.items)
                ev.generate(spec.name, answerer)
            letters = {rid: ev.answer_row(spec.name, rid)["letter"] for rid in plan.items}
            results[spec.name] = {
                "path": spec.path,
                **_flat(accuracy_by_type(list(plan.items.values()), letters)),
            }
        return results

    def reference(self, plan: ChoicePlan) -> str:
        return "the correct options"


def _flat(scores: dict[str, Any]) -> dict[str, Any]:
    overall = scores["overall"]
    out = {
        "accuracy": overall["accuracy"],
        "correct": overall["correct"],
        "total": overall["total"],
        "unanswered": overall["unanswered"],
    }
    for name, score in scores["by_type"].items():
        out[f"accuracy {name}"] = score["accuracy"]
    return out
