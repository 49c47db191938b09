"""The start-up check of the nodes the other tools read: eval, sft, compare and label."""

from __future__ import annotations

from pathlib import Path

from cpe.config import CPEConfig
from cpe.validate.checks import DTYPES, Checker, check_resume, registry_choices


def _eval(cfg: CPEConfig, c: Checker) -> None:
    e, choices = cfg.eval, registry_choices()
    c.choice(e.task, "eval.task", choices["eval_task"])
    c.choice(e.lc_method, "eval.lc_method", choices["lc_method"])
    c.choice(e.judge.backend, "eval.judge.backend", choices["judge_backend"])
    if e.set is not None:
        c.choice(e.set, "eval.set", choices["eval_set"])
    if e.max_records is not None:
        c.positive(e.max_records, "eval.max_records")
    c.positive(e.judge.max_prompt_tokens, "eval.judge.max_prompt_tokens")
    c.choice(e.judge.dtype, "eval.judge.dtype", DTYPES)
    c.non_negative(e.judge.retries, "eval.judge.retries")
    if e.judge.backend == "openai":
        c.positive(e.judge.openai.concurrency, "eval.judge.openai.concurrency")
        c.non_negative(e.judge.openai.max_retries, "eval.judge.openai.max_retries")
    if cfg.trainer.eval_every and e.judge.backend == "vllm":
        # During training the judge runs on the GRM pool's engines, which hold the GRM.
        c.require(
            cfg.grm.backend == "vllm" and e.judge.model == cfg.model.grm.path,
            "eval.judge.model",
            f"{e.judge.model!r}: with trainer.eval_every the vLLM judge is the GRM engines' "
            f"model ({cfg.model.grm.path!r}, grm.backend=vllm); or use eval.judge.backend=openai",
        )
        from cpe.eval.judges import JUDGE_LEN_SLACK

        room = cfg.grm.max_prompt_tokens + cfg.grm.max_new_tokens - JUDGE_LEN_SLACK
        c.require(
            e.judge.max_prompt_tokens <= room,
            "eval.judge.max_prompt_tokens",
            f"{e.judge.max_prompt_tokens} exceeds what the GRM engines hold ({room}: "
            "grm.max_prompt_tokens + grm.max_new_tokens - 8)",
        )
    if e.task != "pairwise":
        # Keys only the pairwise task reads: a set one would be silently ignored.
        for key, value, default in (
            ("probe", e.probe, False),
            ("grm_scores", e.grm_scores, False),
            ("reference", e.reference, "initial"),
        ):
            c.require(
                value == default, f"eval.{key}", f"applies to eval.task=pairwise only, not {e.task}"
            )
    if cfg.trainer.eval_every and e.judge.backend == "vllm":
        c.require(
            e.judge.dtype == cfg.model.grm.dtype,
            "eval.judge.dtype",
            f"{e.judge.dtype!r}: with trainer.eval_every the judge runs on the GRM engines "
            f"({cfg.model.grm.dtype!r})",
        )
    if cfg.trainer.eval_every:
        c.require(e.task == "pairwise", "eval.task", f"{e.task!r}: during training only pairwise")
        c.require(
            e.reference == "initial" or e.reference == "dataset" or Path(e.reference).is_file(),
            "eval.reference",
            f"{e.reference!r}: during training the reference is initial, dataset or an outputs file",
        )


def _sft(cfg: CPEConfig, c: Checker) -> None:
    """The sft node's values (cpe.sft itself requires sft.model and sft.train_path)."""
    from cpe.sft.tasks import SFT_TASKS

    s = cfg.sft
    c.choice(s.task, "sft.task", SFT_TASKS)
    c.choice(s.dtype, "sft.dtype", DTYPES)
    for key in ("epochs", "lr", "batch_examples", "save_every", "keep_checkpoints"):
        c.positive(getattr(s, key), f"sft.{key}")
    c.require(s.max_len >= 2, "sft.max_len", f"{s.max_len} leaves no room for a reply")
    c.non_negative(s.eval_every, "sft.eval_every")
    c.require(0 <= s.eval_share < 1, "sft.eval_share", f"{s.eval_share} must be in [0, 1)")
    check_resume(s.resume, c, key="sft.resume")


def _compare(cfg: CPEConfig, c: Checker) -> None:
    from cpe.compare.stages import COMPARED_RUNS

    runs = cfg.compare.runs
    for run in runs:
        c.choice(run, "compare.runs", COMPARED_RUNS)
    c.require(bool(runs), "compare.runs", "names no run")
    c.require(len(set(runs)) == len(runs), "compare.runs", f"{list(runs)} repeats a run")
    c.positive(cfg.compare.sample_pairs, "compare.sample_pairs")


def _label(cfg: CPEConfig, c: Checker) -> None:
    lab = cfg.label
    c.choice(lab.preference, "label.preference", registry_choices()["label_preference"])
    c.require(0 <= lab.eval_share < 1, "label.eval_share", f"{lab.eval_share} must be in [0, 1)")
    c.positive(lab.chunk, "label.chunk")
    if lab.max_pairs is not None:
        c.positive(lab.max_pairs, "label.max_pairs")
    if lab.sample_answers:
        c.require(
            lab.preference == "teacher",
            "label.preference",
            f"{lab.preference!r}: sampled answers (label.sample_answers=true) have no dataset "
            "preference; set label.preference=teacher",
        )
    if lab.consistency_filter:
        c.require(
            lab.preference == "dataset",
            "label.consistency_filter",
            f"applies to label.preference=dataset only, not {lab.preference!r}",
        )


PARTS = (_eval, _label, _sft, _compare)
