"""PersonaMem (``eval.task=multiple_choice``): each policy answers every question after
its shared-context conversation; the letter is read from the final answer; accuracy
overall and per ``question_type``.

``eval.data_path`` is a ``questions_*.csv``; its contexts are the ``shared_contexts_*.jsonl``
beside it (the published naming: ``questions_32k.csv`` -> ``shared_contexts_32k.jsonl``).
A conversation longer than ``rollout.max_prompt_tokens`` is an error, not cut: a cut
context would change the question.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from cpe.eval.answers import eval_sampling
from cpe.eval.evaluation import EvalSettings, Evaluation
from cpe.eval.host import EngineHost
from cpe.eval.plan import MAX_LISTED, answer_meta, output_folder
from cpe.eval.policies import PolicySpec, parse_policies
from cpe.prompts import PromptSet, choice_messages, to_token_ids
from cpe.protocols import Generator
from cpe.types import SamplingSpec


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


class ChoiceAnswerer:
    """(record, variant) chunks -> answer rows with the letter read from each answer."""

    def __init__(
        self,
        engine: Generator,
        tokenizer: Any,
        prompts: PromptSet,
        spec: SamplingSpec,
        items: dict[str, PersonaMemItem],
        max_prompt_tokens: int,
    ):
        self.engine, self.tokenizer, self.prompts, self.spec = engine, tokenizer, prompts, spec
        self.items, self.max_prompt_tokens = items, max_prompt_tokens

    def prompt_ids(self, item: PersonaMemItem) -> list[int]:
        messages = choice_messages(list(item.messages), item.question, item.options, self.prompts)
        return to_token_ids(self.tokenizer, messages)

    def check_lengths(self, records: Sequence[Record]) -> None:
        over = [
            (r.id, n)
            for r in records
            if (n := len(self.prompt_ids(self.items[r.id]))) > self.max_prompt_tokens
        ]
        if over:
            shown = ", ".join(f"{rid!r} ({n} tokens)" for rid, n in over[:MAX_LISTED])
            raise ValueError(
                f"{len(over)} PersonaMem prompts are longer than rollout.max_prompt_tokens="
                f"{self.max_prompt_tokens}: {shown}; raise it (and the model's context) or "
                "pick a shorter-context split"
            )

    def __call__(self, chunk: Sequence[tuple[Record, str]]) -> list[dict[str, Any]]:
        outputs = self.engine.generate(
            [self.prompt_ids(self.items[r.id]) for r, _ in chunk], self.spec
        )
        return [
            {
                "id": record.id,
                "variant": variant,
                "answer": out[0].text,
                "tokens": len(out[0].token_ids),
                "letter": read_answer_letter(out[0].text),
            }
            for (record, variant), out in zip(chunk, outputs, strict=True)
        ]


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
            self._answerer(cfg, plan, None, _tokenizer(cfg, policy)).check_lengths(records)
        return plan

    def _answerer(self, cfg: CPEConfig, plan: ChoicePlan, engines: Any, tokenizer: Any):
        prompts = PromptSet.from_config(cfg.prompts)
        sampling = eval_sampling(cfg.rollout)
        return ChoiceAnswerer(
            engines, tokenizer, prompts, sampling, plan.items, cfg.rollout.max_prompt_tokens
        )

    def run(self, cfg: CPEConfig, plan: ChoicePlan, host: EngineHost) -> dict[str, Any]:
        ev = plan.evaluation
        results = {}
        for spec in plan.policies:
            if ev.missing_answers(spec.name):
                engines, tokenizer = host.policy(spec.model_path)
                ev.generate(spec.name, self._answerer(cfg, plan, engines, tokenizer))
            letters = {rid: ev.answer_row(spec.name, rid)["letter"] for rid in plan.items}
            results[spec.name] = {
                "path": spec.path,
                **_flat(accuracy_by_type(list(plan.items.values()), letters)),
            }
        return results

    def reference(self, plan: ChoicePlan) -> str:
        return "the correct options"


def _tokenizer(cfg: CPEConfig, policy: PolicySpec) -> Any:
    from transformers import AutoTokenizer

    from cpe.models.paths import resolve_model_path

    path = resolve_model_path(policy.model_path, cfg.model.cache_dir, "eval.policies")
    return AutoTokenizer.from_pretrained(path)


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
