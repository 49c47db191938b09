"""A labelling run: :func:`plan_label` does every cheap check (pairs, folder settings,
models) in seconds; :func:`run_label` starts what the teacher and sampling need, labels
what the folder lacks and publishes the outputs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from cpe.config import CPEConfig
from cpe.data.records import Record
from cpe.label.assemble import assemble
from cpe.label.inputs import answers_cache, load_pairs, sample_pairs
from cpe.label.outputs import Summary, summarize, write_outputs
from cpe.label.store import LabelStore, check_settings, save_settings
from cpe.label.teacher import label_answers
from cpe.models.paths import check_model_path
from cpe.prompts import PromptSet


@dataclass(frozen=True)
class LabelPlan:
    records: list[Record]
    folder: Path
    prompts: PromptSet
    store: LabelStore  # what the folder already holds


def teacher_settings(cfg: CPEConfig) -> dict[str, Any]:
    """Config key -> value of everything the folder's labels depend on."""
    g, lab, o = cfg.grm, cfg.label, cfg.prompts.overrides
    settings: dict[str, Any] = {
        "label.pairs_path": lab.pairs_path,
        "label.preference": lab.preference,
        "label.sample_answers": lab.sample_answers,
        "grm.backend": g.backend,
        "grm.weights": list(g.weights),
        "prompts.set": cfg.prompts.set,
        "prompts.overrides.grm": o.grm,
    }
    if g.backend == "openai":
        settings["grm.openai.base_url"] = g.openai.base_url.rstrip("/")
        settings["grm.openai.model"] = g.openai.model
    elif g.backend == "python":
        settings["grm.python_function"] = g.python_function
    else:
        settings["model.grm.path"] = cfg.model.grm.path
    return settings


def plan_label(cfg: CPEConfig) -> LabelPlan:
    if cfg.grm.backend == "bt":
        raise ValueError(
            "grm.backend='bt' is a Bradley-Terry reward model: it writes no critiques to "
            "label with; use grm.backend=vllm, openai or python for cpe.label"
        )
    folder = Path(cfg.label.output_dir)
    records = load_pairs(cfg)
    check_settings(folder, teacher_settings(cfg))
    if cfg.grm.backend == "vllm":
        check_model_path(cfg.model.grm.path, "model.grm.path")
    if cfg.label.sample_answers:
        check_model_path(cfg.model.policy.path, "model.policy.path")
        answers_cache(cfg, folder)  # refuses answers sampled with other settings
    store = LabelStore(folder)  # a broken labels.jsonl is reported before any engine starts
    return LabelPlan(records, folder, PromptSet.from_config(cfg.prompts), store)


def run_label(cfg: CPEConfig, plan: LabelPlan) -> Summary:
    from cpe.eval.host import EngineHost

    lab = cfg.label
    save_settings(plan.folder, teacher_settings(cfg))
    store = plan.store
    with EngineHost(cfg) as host:
        pairs = plan.records
        if lab.sample_answers:
            pairs = sample_pairs(cfg, host, pairs, plan.folder, plan.prompts)
        teacher = partial(host.grm, plan.prompts)
        run = label_answers(teacher, pairs, store, lab.chunk, cfg.logging.progress)
    built = assemble(pairs, store.labels, lab, plan.prompts)
    summary = summarize(plan.folder, lab.preference, len(pairs), run, built)
    write_outputs(plan.folder, built, summary)
    return summary
