"""The stages of the paper's comparison, each one of cpe's own commands run with the
user's overrides: pairs for the Bradley-Terry model (cpe.label), the reward model
(cpe.sft), one training per compared run (cpe.train), their evaluation (cpe.eval) and
plots (cpe.report). A stage whose output exists is done; every command continues what
it finds, so a stopped comparison resumes stage by stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cpe.config import CPEConfig

BT_FOLDER = "bt"
LABEL_FOLDER = "label"
EVAL_FOLDER = "eval"
# Each compared run's overrides after the user's: what makes the run what it is. {bt} is
# the reward model's folder, {max_len} the prompt + answer tokens it was trained on
# (answers are scored as far as it read them); a BT scorer takes one device per slot.
COMPARED_RUNS: dict[str, tuple[str, ...]] = {
    "ppo-bt": (
        "algorithm=ppo",
        "grm=bt",
        "model.grm.path={bt}",
        "grm.max_prompt_tokens={max_len}",
        "cluster.pools.grm.devices_per_engine=1",
    ),
    "ppo-grm": ("algorithm=ppo",),
    "cpe": ("algorithm=cpe",),
}


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # run as python -m <module>
    args: tuple[str, ...]
    output: Path  # exists once the stage is done

    def done(self) -> bool:
        return self.output.exists()


def user_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides every stage gets: all but the compare node's own."""
    return [o for o in overrides if not o.lstrip("+~").startswith("compare.")]


def plan_stages(cfg: CPEConfig, overrides: Sequence[str]) -> list[Stage]:
    c = cfg.compare
    out = Path(c.output_dir).resolve()
    user = user_overrides(overrides)
    stages: list[Stage] = []
    bt_model = out / BT_FOLDER / "model"
    if "ppo-bt" in c.runs:
        pairs = c.pairs_path
        if pairs is None:
            stages.append(_label_stage(cfg, user, out / LABEL_FOLDER))
            pairs = str(out / LABEL_FOLDER / "pairs.jsonl")
        stages.append(_bt_stage(cfg, user, pairs, out / BT_FOLDER))
    for run in c.runs:
        extra = [arg.format(bt=bt_model, max_len=pair_len(cfg)) for arg in COMPARED_RUNS[run]]
        args = (*user, *extra, f"logging.run_dir={out / run}", f"logging.wandb_group={out.name}")
        stages.append(Stage(run, "cpe.train", args, out / run / "summary.json"))
    stages.append(_eval_stage(cfg, user, out))
    return stages


def pair_len(cfg: CPEConfig) -> int:
    """Prompt + answer tokens of a policy answer: what the reward model reads."""
    return cfg.rollout.max_prompt_tokens + cfg.rollout.max_new_tokens


def _personas(cfg: CPEConfig, node: str) -> tuple[str, ...]:
    """The training data's personas file (when it has one) for the pairs."""
    path = cfg.data.personas_path
    return (f"{node}.personas_path={path}",) if path else ()


def _label_stage(cfg: CPEConfig, user: list[str], folder: Path) -> Stage:
    """Two answers of the starting policy per training prompt, ordered by the GRM."""
    args = (
        *_personas(cfg, "label"),
        *user,
        f"label.pairs_path={cfg.data.train_path}",
        "label.sample_answers=true",
        "label.preference=teacher",
        f"label.max_pairs={cfg.compare.sample_pairs}",
        "label.eval_share=0",  # cpe.sft holds out its own share
        f"label.output_dir={folder}",
    )
    return Stage("label", "cpe.label", args, folder / "summary.json")


def _bt_stage(cfg: CPEConfig, user: list[str], pairs: str, folder: Path) -> Stage:
    """The reward model starts from the starting policy and reads what it answers."""
    args = (
        # Defaults before the user's overrides, which win. Epochs, batch and rate are
        # sized for the tens of sampled pairs of the embedded default.
        "sft.epochs=2",
        "sft.batch_examples=8",
        "sft.eval_share=0.2",
        "sft.lr=5e-5",
        f"sft.model={cfg.model.policy.path}",
        f"sft.dtype={cfg.model.policy.dtype}",
        f"sft.max_len={pair_len(cfg)}",
        *_personas(cfg, "sft"),
        *user,
        "sft.task=bt",
        f"sft.train_path={pairs}",
        f"sft.output_dir={folder}",
    )
    return Stage("bt", "cpe.sft", args, folder / "model" / "reward_head.safetensors")


def _eval_stage(cfg: CPEConfig, user: list[str], out: Path) -> Stage:
    """Every run's policy against the starting one, judged; the GRM scores them all,
    so one reward compares runs trained on different reward models."""
    policies = ",".join(f'"{run}={out / run}"' for run in cfg.compare.runs)
    args = (
        *user,
        f"eval.policies=[{policies}]",
        "eval.reference=initial",
        "eval.grm_scores=true",
        f"eval.output_dir={out / EVAL_FOLDER}",
    )
    return Stage("eval", "cpe.eval", args, out / EVAL_FOLDER / "results.json")


def check_stages(stages: list[Stage]) -> None:
    """Every stage's config composes and validates now, not after the stages before it
    have run for an hour; raises ValueError naming the stage and the key."""
    from cpe.compose import compose, one_line_error, to_typed
    from cpe.validate import validate

    for stage in stages:
        try:
            validate(to_typed(compose(list(stage.args))))
        except Exception as exc:  # noqa: BLE001 - becomes one line naming the stage
            raise ValueError(f"stage {stage.name}: {one_line_error(exc)}") from exc
