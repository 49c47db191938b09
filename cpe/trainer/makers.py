"""Experience makers: the PPO baseline and CPE as two small strategy classes.

``PPOMaker``: rollout -> score (spec steps 1, 5). ``CPEMaker`` adds critique -> edit ->
pool -> select (steps 2-4, 6). Both implement :class:`cpe.protocols.ExperienceMaker`;
the driver calls ``maker.make(records, step)`` and never branches on the mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from cpe.algo import edit_budget, select_edits
from cpe.config import CPEConfig, GRMConfig
from cpe.data.records import Record
from cpe.learner.group import optimizer_updates
from cpe.prompts import PromptSet, edit_messages, policy_messages
from cpe.prompts.chat import to_token_ids
from cpe.protocols import RewardModel, RolloutPool
from cpe.trainer.experience import Experience, Sample
from cpe.trainer.timing import PhaseTimer
from cpe.types import SamplingSpec


class Prompter:
    """Token ids of the policy and post-edit prompts, with hard length limits."""

    def __init__(
        self, tokenizer, prompts: PromptSet, max_prompt_tokens: int, max_edit_prompt_tokens: int
    ):
        self.tokenizer = tokenizer
        self.prompts = prompts
        self.max_prompt_tokens = max_prompt_tokens
        self.max_edit_prompt_tokens = max_edit_prompt_tokens

    def policy_ids(self, record: Record) -> list[int]:
        ids = to_token_ids(self.tokenizer, policy_messages(record, self.prompts))
        if len(ids) > self.max_prompt_tokens:
            raise ValueError(
                f"record {record.id!r}: policy prompt has {len(ids)} tokens > "
                f"rollout.max_prompt_tokens={self.max_prompt_tokens}"
            )
        return ids

    def edit_ids(self, record: Record, answer: str, critique: str) -> list[int]:
        ids = to_token_ids(self.tokenizer, edit_messages(record, answer, critique, self.prompts))
        over = len(ids) - self.max_edit_prompt_tokens
        if over <= 0:
            return ids
        # Never cut the template or the user turn: shorten the critique, then the answer.
        slack = 8  # decode/encode round trips can shift a few tokens
        answer_ids, critique_ids = self._encode(answer), self._encode(critique)
        cut = min(over + slack, max(0, len(critique_ids) - 32))
        critique_ids = critique_ids[: len(critique_ids) - cut]
        answer_ids = answer_ids[: max(0, len(answer_ids) - (over + slack - cut))]
        ids = to_token_ids(
            self.tokenizer,
            edit_messages(
                record,
                self.tokenizer.decode(answer_ids),
                self.tokenizer.decode(critique_ids),
                self.prompts,
            ),
        )
        if len(ids) > self.max_edit_prompt_tokens:
            raise ValueError(
                f"record {record.id!r}: the edit prompt does not fit in {self.max_edit_prompt_tokens} tokens"
            )
        return ids

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)


# Sampling settings a maker takes verbatim from cfg.rollout.
_ROLLOUT_KEYS = ("n", "temperature", "top_p", "max_new_tokens", "edit_max_new_tokens")


@dataclass
class MakerSettings:
    n: int
    temperature: float
    top_p: float
    max_new_tokens: int
    edit_max_new_tokens: int
    selection: str = "random"
    edit_ratio: float = 0.5
    divisor: int = 1  # data-parallel size: batch rows stay divisible by it
    seed: int = 0
    max_invalid_share: float = GRMConfig.max_invalid_share

    @classmethod
    def from_config(cls, cfg: CPEConfig, divisor: int) -> MakerSettings:
        sampling = {name: getattr(cfg.rollout, name) for name in _ROLLOUT_KEYS}
        selection = {name: getattr(cfg.algorithm, name) for name in ("selection", "edit_ratio")}
        return cls(
            **sampling,
            **selection,
            divisor=divisor,
            seed=cfg.trainer.seed,
            max_invalid_share=cfg.grm.max_invalid_share,
        )


class PPOMaker:
    """Originals only, each scored by the GRM."""

    makes_edits: ClassVar[bool] = False

    def __init__(
        self,
        rollout: RolloutPool,
        grm: RewardModel,
        prompter: Prompter,
        settings: MakerSettings,
        timer: PhaseTimer,
    ):
        self.rollout, self.grm, self.prompter, self.s, self.timer = (
            rollout,
            grm,
            prompter,
            settings,
            timer,
        )
        self.generator = torch.Generator().manual_seed(settings.seed)

    def state_dict(self) -> dict:
        """What a checkpoint needs to continue exactly: the selection RNG."""
        return {"selection_rng": self.generator.get_state().tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(torch.tensor(state["selection_rng"], dtype=torch.uint8))

    def make(self, records: Sequence[Record], step: int) -> Experience:
        self.grm.reset_metrics()  # grm/* metrics are per step
        originals = self.generate_originals(records, step)
        with self.timer("score"):
            self.assign_scores(originals, self.grm.score(_items(originals)))
        return Experience(originals, grm_stats=self.grm_stats())

    def grm_stats(self) -> dict[str, float]:
        """This step's grm/* counters, once every GRM call of the step is done. Every
        maker ends its step here, so this is where a step with too many invalid results
        stops the run (GRMError), before the learners train on what is left."""
        self.grm.check_invalid_share(self.s.max_invalid_share)
        return self.grm.metrics()

    def spec(self, n: int, max_tokens: int, step: int, salt: int) -> SamplingSpec:
        # A per-step seed keeps a resumed run's samples identical to an uninterrupted one.
        seed = self.s.seed * 1_000_003 + step * 7919 + salt
        return SamplingSpec(
            n=n,
            temperature=self.s.temperature,
            top_p=self.s.top_p,
            max_tokens=max_tokens,
            seed=seed,
        )

    def generate_originals(self, records: Sequence[Record], step: int) -> list[Sample]:
        prompts = [self.prompter.policy_ids(r) for r in records]
        with self.timer("generate"):
            outs = self.rollout.generate(
                prompts, self.spec(self.s.n, self.s.max_new_tokens, step, 0)
            )
        samples = []
        for group, (record, gens) in enumerate(zip(records, outs, strict=True)):
            for g in gens:
                samples.append(
                    Sample(
                        group,
                        record,
                        g.prompt_ids,
                        g.token_ids,
                        g.text,
                        pair_id=len(samples),
                        finish_reason=g.finish_reason,
                    )
                )
        return samples

    @staticmethod
    def assign_scores(samples: Sequence[Sample], results) -> None:
        for sample, result in zip(samples, results, strict=True):
            sample.reward = result.reward if result.valid else None
            sample.scores = result.judgement.scores if (result.valid and result.judgement) else None


class CPEMaker(PPOMaker):
    """Originals -> critiques -> edits (re-attached to the original prompt) -> selection."""

    makes_edits: ClassVar[bool] = True

    def make(self, records: Sequence[Record], step: int) -> Experience:
        self.grm.reset_metrics()
        originals = self.generate_originals(records, step)
        with self.timer("critique"):
            critiques = self.grm.critique(_items(originals))
        edits = self.generate_edits(originals, critiques, step)
        with self.timer("score"):
            self.score_pairs(originals, critiques, edits)
        return self.experience(originals, edits)

    def score_pairs(self, originals: list[Sample], critiques, edits: list[Sample]) -> None:
        """Rewards of originals and their edits: single_call critiques already carry the
        originals' rewards, so only the edits are scored then."""
        if self.grm.critique_gives_reward:
            self.assign_scores(originals, critiques)
            self.assign_scores(edits, self.grm.score(_items(edits)))
        else:
            self.assign_scores(originals + edits, self.grm.score(_items(originals + edits)))

    def experience(self, originals: list[Sample], edits: list[Sample]) -> Experience:
        """The step's experience with this step's GRM counters and the selected edits."""
        exp = Experience(originals, edits, grm_stats=self.grm_stats())
        exp.selected = self.select(exp)
        return exp

    def generate_edits(self, originals: list[Sample], critiques, step: int) -> list[Sample]:
        for sample, result in zip(originals, critiques, strict=True):
            # An empty critique (single_call: the scores parsed, the critique did not) edits nothing.
            sample.critique = result.critique if result.valid and result.critique.strip() else None
        todo = [s for s in originals if s.critique]
        prompts = [self.prompter.edit_ids(s.record, s.text, s.critique) for s in todo]
        with self.timer("edit"):
            outs = (
                self.rollout.generate(prompts, self.spec(1, self.s.edit_max_new_tokens, step, 1))
                if todo
                else []
            )
        edits = []
        for original, edit_prompt, gens in zip(todo, prompts, outs, strict=True):
            g = gens[0]
            # Spec step 4: the edit trains under the ORIGINAL prompt x, linked to its y_o.
            edits.append(
                Sample(
                    original.group_id,
                    original.record,
                    original.prompt_ids,
                    g.token_ids,
                    g.text,
                    is_edit=True,
                    pair_id=original.pair_id,
                    edit_prompt_ids=edit_prompt,
                    finish_reason=g.finish_reason,
                )
            )
        return edits

    def select(self, exp: Experience) -> list[int]:
        if not exp.edits:
            return []
        reward_orig, reward_edit = exp.reward_tensors()
        return select_edits(
            self.s.selection,
            reward_orig=reward_orig,
            reward_edit=reward_edit,
            pair_ids=torch.tensor([e.pair_id for e in exp.edits]),
            group_ids=torch.tensor([e.group_id for e in exp.edits]),
            ratio=self.s.edit_ratio,
            n=self.s.n,
            divisor=self.s.divisor,
            generator=self.generator,
        ).tolist()


def _items(samples: Sequence[Sample]) -> list[tuple[Record, str]]:
    return [(s.record, s.text) for s in samples]


MAKERS = {"ppo": PPOMaker, "cpe": CPEMaker}


def max_rows_per_step(cfg: CPEConfig) -> int:
    """The most sequences a step can train on: B x n originals, plus at most the edit
    budget (cpe.algo.selection.edit_budget) where the mode edits."""
    b, n = cfg.trainer.rollout_batch_prompts, cfg.rollout.n
    edits = 0
    if MAKERS[cfg.algorithm.mode].makes_edits:
        edits = edit_budget(cfg.algorithm.edit_ratio, b, n, divisor=1)
    return b * n + edits


def max_updates_per_step(cfg: CPEConfig) -> int:
    """Optimizer updates of the largest step (one epoch), in mini-batches of
    ``learner.mini_batch_prompts`` x ``rollout.n`` sequences."""
    return optimizer_updates(max_rows_per_step(cfg), mini_batch_rows(cfg))


def mini_batch_rows(cfg: CPEConfig) -> int:
    return cfg.learner.mini_batch_prompts * cfg.rollout.n
