"""The pairs to label: read from ``label.pairs_path`` (checked before any engine starts),
or, with ``label.sample_answers``, two answers per record sampled from the policy and
kept in ``<output_dir>/answers.jsonl`` so a re-run samples nothing again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cpe.config import CPEConfig
from cpe.data.paths import load_path
from cpe.data.records import Record
from cpe.eval.answers import PolicyAnswerer
from cpe.eval.cache import JsonlCache
from cpe.prompts import PromptSet
from cpe.types import SamplingSpec

ANSWERS_FILE = "answers.jsonl"
SAMPLED = 2  # answers per record: the pair
MAX_LISTED = 3


def load_pairs(cfg: CPEConfig) -> list[Record]:
    """The records of ``label.pairs_path`` (at most ``label.max_pairs``), each with both
    answers unless they are to be sampled."""
    lab = cfg.label
    if not lab.pairs_path:
        raise ValueError(
            "label.pairs_path: is not set; give a file of preference pairs, or records to "
            "sample answers for (label.pairs_path=bundled:train label.sample_answers=true "
            "label.preference=teacher)"
        )
    records = load_path(lab.pairs_path, lab.personas_path)
    records = records[: lab.max_pairs] if lab.max_pairs else records
    if not lab.sample_answers:
        _check_answers(records, lab.pairs_path)
    return records


def _check_answers(records: Sequence[Record], path: str) -> None:
    lacking = [r.id for r in records if not r.chosen or not r.rejected]
    if lacking:
        shown = ", ".join(repr(i) for i in lacking[:MAX_LISTED])
        more = f" and {len(lacking) - MAX_LISTED} more" if len(lacking) > MAX_LISTED else ""
        raise ValueError(
            f"label.pairs_path={path!r}: {len(lacking)} of {len(records)} records lack a "
            f"chosen or rejected answer (ids {shown}{more}); give preference pairs, or set "
            "label.sample_answers=true label.preference=teacher to sample two answers each"
        )


def sampling(cfg: CPEConfig) -> SamplingSpec:
    """Two training-style samples per prompt (rollout.temperature / top_p, seeded)."""
    r = cfg.rollout
    return SamplingSpec(
        n=SAMPLED,
        temperature=r.temperature,
        top_p=r.top_p,
        max_tokens=r.max_new_tokens,
        seed=r.seed,
        logprobs=False,
    )


def answers_meta(cfg: CPEConfig) -> dict[str, Any]:
    """What sampled answers depend on: a folder sampled otherwise is refused."""
    r = cfg.rollout
    return {
        "model": cfg.model.policy.path,
        "pairs_path": cfg.label.pairs_path,
        "temperature": r.temperature,
        "top_p": r.top_p,
        "max_new_tokens": r.max_new_tokens,
        "seed": r.seed,
        "prompts": cfg.prompts.set,
        "overrides": [cfg.prompts.overrides.policy_system, cfg.prompts.overrides.policy_user],
    }


def answers_cache(cfg: CPEConfig, folder: Path) -> JsonlCache:
    return JsonlCache(folder / ANSWERS_FILE, answers_meta(cfg), ("id",))


class PairSampler(PolicyAnswerer):
    """PolicyAnswerer's prompts and engine call, keeping both samples of each prompt."""

    def __call__(self, chunk: Sequence[Record]) -> list[dict[str, Any]]:
        prompt_ids = [self.prompt_ids(r, "default") for r in chunk]
        outputs = self.engine.generate(prompt_ids, self.spec)
        return [
            {
                "id": r.id,
                "answers": [g.text for g in gens],
                "tokens": [len(g.token_ids) for g in gens],
            }
            for r, gens in zip(chunk, outputs, strict=True)
        ]


def sample_pairs(
    cfg: CPEConfig, host: Any, records: Sequence[Record], folder: Path, prompts: PromptSet
) -> list[Record]:
    """Each record with its two sampled answers as chosen / rejected (in sampled order;
    the teacher's preference orders them later)."""
    cache = answers_cache(cfg, folder)
    todo = [r for r in records if (r.id,) not in cache]
    if todo:
        engines, tokenizer = host.policy(cfg.model.policy.path)
        sampler = PairSampler(engines, tokenizer, prompts, sampling(cfg))
        cache.fill(todo, sampler, "sampling answers", "prompt", cfg.logging.progress)
    pairs = []
    for record in records:
        first, second = cache.get((record.id,))["answers"][:SAMPLED]
        pairs.append(replace(record, chosen=first, rejected=second))
    return pairs
