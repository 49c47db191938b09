"""The Driver's step loop over fake actor groups: the order of a step, the batch it
trains on (behaviour log-probs, advantages, masks), checkpoints, metrics and resume.

The maker, the learners and the weight sync are in-process fakes (``unit.fakes``); the
cursor, the checkpoint manager, the metrics logger, the timer and all the math are real.
"""

from __future__ import annotations

import logging

import pytest
import torch
from unit.fakes import CHARS, FakeLearners, FakeRollout, FakeSync, make_records

from cpe.config import AlgorithmConfig, CPEConfig, KLConfig, LoggingConfig, TrainerConfig
from cpe.data.cursor import PromptCursor
from cpe.prompts import DEFAULT
from cpe.reward import GRMScorer, PythonBackend, format_grm_output
from cpe.trainer.checkpoint import CheckpointManager, read_driver_state
from cpe.trainer.driver import Driver
from cpe.trainer.experience import Experience, Sample
from cpe.trainer.makers import CPEMaker, MakerSettings, Prompter
from cpe.trainer.metrics import MetricsLogger, read_metrics
from cpe.trainer.timing import PhaseTimer

PAD = 0


@pytest.fixture(autouse=True)
def keep_torch_rng():
    """The driver saves and restores torch's global RNG; leave it as we found it."""
    state = torch.get_rng_state()
    yield
    torch.set_rng_state(state)


class FakeMaker:
    """``ExperienceMaker`` with a fixed, hand-made experience for each pair of records.

    Per record pair: 4 originals (one invalid), 3 edits of which 2 are selected.
    Draws one number from torch's global RNG per step (to check it is restored)."""

    def __init__(self, log: list):
        self.log = log
        self.calls = 0
        self.seen: list[list[str]] = []
        self.draws: list[float] = []

    def make(self, records, step):
        self.calls += 1
        self.log.append(("make", step))
        self.seen.append([r.id for r in records])
        self.draws.append(float(torch.rand(1)))
        a, b = records

        def s(group, record, prompt, response, reward, pair, **kw):
            return Sample(group, record, prompt, response, "t", pair_id=pair, reward=reward, **kw)

        originals = [
            s(0, a, [11, 12], [21, 22, 23], 1.0, 0),
            s(0, a, [11, 12], [24], None, 1),  # invalid GRM result: stays, masked out
            s(1, b, [13, 14, 15], [25, 26], 2.0, 2),
            s(1, b, [13, 14, 15], [27, 28, 29, 30], -1.0, 3),
        ]
        edits = [
            s(0, a, [11, 12], [31, 32], 3.0, 0, is_edit=True, edit_prompt_ids=[91, 92, 93, 94, 95]),
            s(1, b, [13, 14, 15], [33, 34, 35], 0.5, 2, is_edit=True, edit_prompt_ids=[96, 97]),
            s(1, b, [13, 14, 15], [36], 0.0, 3, is_edit=True, edit_prompt_ids=[98]),
        ]
        return Experience(originals, edits, selected=[0, 1], grm_stats={"grm/results": 7.0})

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = state["calls"]


def config(save_every=2, whiten=False, kl=None) -> CPEConfig:
    return CPEConfig(
        algorithm=AlgorithmConfig(whiten_advantages=whiten, kl=kl or KLConfig()),
        trainer=TrainerConfig(save_every=save_every, keep_checkpoints=5),
        logging=LoggingConfig(wandb_mode="disabled", progress=False, sample_rows=2),
    )


def driver(run_dir, maker, learners, sync, total_steps, cfg=None, resume_step=0, cursor_seed=7):
    cfg = cfg or config()
    return Driver(
        cfg=cfg,
        maker=maker,
        learners=learners,
        sync=sync,
        cursor=PromptCursor(make_records(5), batch_size=2, seed=cursor_seed),
        checkpoints=CheckpointManager(run_dir, keep=cfg.trainer.keep_checkpoints),
        logger=MetricsLogger(run_dir, wandb_mode="disabled", resume_step=resume_step),
        timer=PhaseTimer(),
        pad_id=PAD,
        total_steps=total_steps,
    )


def fakes():
    log: list = []
    return log, FakeMaker(log), FakeLearners(log), FakeSync(log)


def test_step_order_checkpoints_and_metrics(tmp_path):
    log, maker, learners, sync = fakes()
    d = driver(tmp_path, maker, learners, sync, total_steps=3)
    d.fit()

    def step(k):
        return [("make", k), ("forward_passes", 6, 2), ("train", k), ("push", k)]

    assert log == [
        *step(1),
        *step(2),
        ("save", "step_000002.partial"),  # save_every=2
        *step(3),
        ("save", "step_000003.partial"),  # the last step
    ]
    assert sync.versions == [1, 2, 3]
    assert [s for s, _ in d.checkpoints.complete()] == [2, 3]
    assert (d.checkpoints.latest() / "learners.txt").read_text() == "saved"
    assert [t for _, t in learners.train_inputs] == [1, 2, 3]
    assert learners.forward_steps == [1, 2, 3]  # named if a rank dies in them
    assert all(t == d.cfg.rollout.temperature for _, _, t in learners.forward_inputs)

    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert r["policy/loss"] == 0.25 and r["value/loss"] == 0.125  # from train
        assert r["sync/logprob_gap_max"] == 0.0  # from push
        assert r["batch/rows"] == 6.0 and r["batch/selected_edits"] == 2.0
        assert r["grm/results"] == 7.0
        assert r["batch/valid_tokens"] == 3 + 0 + 2 + 4 + 2 + 3
        assert {"time/logprob", "time/advantage", "time/update", "time/sync"} <= set(r)
        assert r["epoch"] in (0, 1)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "step_000001.jsonl",
        "step_000002.jsonl",
        "step_000003.jsonl",
    ]


def test_the_trained_batch_has_behaviour_logp_advantages_and_masks(tmp_path):
    log, maker, learners, sync = fakes()
    d = driver(tmp_path, maker, learners, sync, total_steps=1)
    result = d.run_step()
    batch, step = learners.train_inputs[0]
    assert step == 1 and batch is result.batch

    # rows: 4 originals, then the selected edits 0 and 1, all under the ORIGINAL prompt
    assert batch.input_ids.tolist() == [
        [11, 12, 21, 22, 23, 0, 0],
        [11, 12, 24, 0, 0, 0, 0],
        [13, 14, 15, 25, 26, 0, 0],
        [13, 14, 15, 27, 28, 29, 30],
        [11, 12, 31, 32, 0, 0, 0],
        [13, 14, 15, 33, 34, 35, 0],
    ]
    assert batch.is_edit.tolist() == [False] * 4 + [True] * 2
    assert batch.pair_ids.tolist() == [0, 1, 2, 3, 0, 2]
    assert batch.group_ids.tolist() == [0, 0, 1, 1, 0, 1]
    assert batch.rewards.tolist() == [1.0, 0.0, 2.0, -1.0, 3.0, 0.5]
    assert batch.response_mask.tolist() == [
        [0, 0, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],  # invalid: no token counts
        [0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 1, 1, 1, 1],
        [0, 0, 1, 1, 0, 0, 0],
        [0, 0, 0, 1, 1, 1, 0],
    ]

    # mu was asked for on the edits' own prompts
    _, edits, _ = learners.forward_inputs[0]
    assert edits.input_ids.tolist() == [
        [91, 92, 93, 94, 95, 31, 32],
        [96, 97, 33, 34, 35, 0, 0],
    ]

    # pi_old (-1) everywhere on originals; mu (-2) on the edits' response tokens only,
    # moved from the edit-prompt layout (the -9 outside the response never arrives)
    assert batch.old_logp.eq(-1.0).all()
    assert batch.old_values.eq(0.5).all()
    assert batch.behaviour_logp[:4].eq(-1.0).all()
    assert batch.behaviour_logp[4:].tolist() == [
        [0, 0, -2, -2, 0, 0, 0],
        [0, 0, 0, -2, -2, -2, 0],
    ]
    assert batch.ref_logp is None and batch.kl is None

    # gamma = lambda = 1, V = 0.5, no whitening: A = R - 0.5 and G = R on valid tokens
    r = [1.0, 0.0, 2.0, -1.0, 3.0, 0.5]
    assert torch.allclose(batch.advantages, (torch.tensor(r)[:, None] - 0.5) * batch.response_mask)
    assert torch.allclose(batch.returns, torch.tensor(r)[:, None] * batch.response_mask)
    assert batch.advantages[1].eq(0).all() and batch.returns[1].eq(0).all()


def test_reference_log_probs_give_a_kl_that_enters_the_reward(tmp_path):
    log, maker, _, sync = fakes()
    learners = FakeLearners(log, ref_logp=-1.5)
    kl = KLConfig(coef=0.2, kind="k1", in_reward=True)
    d = driver(tmp_path, maker, learners, sync, total_steps=1, cfg=config(kl=kl))
    batch = d.run_step().batch
    assert batch.ref_logp.eq(-1.5).all()
    # k1 = pi_old - ref = 0.5 on valid tokens, 0 elsewhere
    assert torch.allclose(batch.kl, 0.5 * batch.response_mask)
    # A_t = R - 0.2 * 0.5 * (valid tokens from t on) - V: row 0 (R = 1, 3 tokens)
    assert batch.advantages[0].tolist() == pytest.approx([0, 0, 0.2, 0.3, 0.4, 0, 0])
    assert batch.advantages[1].eq(0).all()


def test_whitened_advantages_have_zero_mean_and_unit_variance_on_valid_tokens(tmp_path):
    log, maker, learners, sync = fakes()
    d = driver(tmp_path, maker, learners, sync, total_steps=1, cfg=config(whiten=True))
    batch = d.run_step().batch
    # raw A = R - 0.5 on 14 valid tokens: 0.5 (x3), 1.5 (x2), -1.5 (x4), 2.5 (x2), 0 (x3);
    # mean 3.5 / 14 = 0.25, unbiased variance 25.875 / 13
    std = (25.875 / 13) ** 0.5
    assert batch.advantages[0].tolist() == pytest.approx([0, 0, *[0.25 / std] * 3, 0, 0])
    assert batch.advantages[3, 3:].tolist() == pytest.approx([-1.75 / std] * 4)
    valid = batch.response_mask > 0
    assert float(batch.advantages[valid].mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(batch.advantages[valid].var()) == pytest.approx(1.0, rel=1e-5)
    assert batch.advantages[~valid].eq(0).all()
    # returns are not whitened
    assert batch.returns[0].tolist() == pytest.approx([0, 0, 1, 1, 1, 0, 0])


def test_state_dict_holds_step_cursor_maker_and_torch_rng(tmp_path):
    log, maker, learners, sync = fakes()
    d = driver(tmp_path, maker, learners, sync, total_steps=4)
    d.run_step()
    d.run_step()  # checkpoint at step 2
    state = d.state_dict()
    assert state["step"] == 2
    assert state["cursor"] == d.cursor.state_dict() == {"epoch": 0, "index": 4, "seed": 7}
    assert state["maker"] == {"calls": 2}
    assert state["torch_rng"] == torch.get_rng_state().tolist()
    assert read_driver_state(d.checkpoints.latest()) == state


def test_restore_continues_with_the_same_prompts_and_rng(tmp_path):
    torch.manual_seed(0)
    _, straight, learners, sync = fakes()
    driver(tmp_path / "straight", straight, learners, sync, total_steps=5).fit()

    torch.manual_seed(0)
    _, first, learners, sync = fakes()
    cfg = config(save_every=3)
    interrupted = driver(tmp_path / "resumed", first, learners, sync, total_steps=5, cfg=cfg)
    for _ in range(3):
        interrupted.run_step()  # checkpoint at step 3, then the process dies

    torch.manual_seed(123)  # a new process: another RNG state until restored
    log, second, learners, sync = fakes()
    resumed = driver(tmp_path / "resumed", second, learners, sync, 5, cfg=cfg, resume_step=3)
    checkpoint = resumed.checkpoints.latest()
    assert checkpoint.name == "step_000003"
    resumed.restore(checkpoint, read_driver_state(checkpoint))
    assert log == [("load", "step_000003")]
    assert resumed.step == 3 and second.calls == 3
    resumed.fit()

    # 5 records, batches of 2 (drop_last): steps 3 and 5 start a new epoch
    assert first.seen + second.seen == straight.seen
    assert len(straight.seen) == 5
    assert first.draws + second.draws == straight.draws
    assert sync.versions == [4, 5]
    rows = read_metrics(tmp_path / "resumed" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]


# --- the real CPEMaker behind the driver ---------------------------------------------


def apple_rule(persona, question, answer):
    count = min(answer.count("apple"), 5)
    return format_grm_output(f"Add apples (has {count}).", [count, count, count])


def respond(prompt: str, index: int) -> str:
    if "<draft_answer>" in prompt:
        return "apple apple apple" if "What is item 1?" in prompt else "apple"
    return "apple " * index + "pear"


def cpe_driver(run_dir, total_steps, cfg):
    rollout = FakeRollout(respond)
    maker = CPEMaker(
        rollout,
        GRMScorer(PythonBackend(apple_rule), retries=0),
        Prompter(CHARS, DEFAULT, 100_000, 100_000),
        MakerSettings(
            n=2, temperature=1.0, top_p=1.0, max_new_tokens=8, edit_max_new_tokens=8, seed=1
        ),
        PhaseTimer(),
    )
    d = driver(run_dir, maker, FakeLearners(), FakeSync(), total_steps, cfg=cfg)
    return d, rollout


def steps_of(d, count):
    out = []
    for _ in range(count):
        r = d.run_step()
        out.append(
            (
                [s.record.id for s in r.experience.originals],
                r.experience.selected,
                r.batch.input_ids.tolist(),
            )
        )
    return out


def test_resume_with_the_real_cpe_maker_repeats_the_uninterrupted_run(tmp_path):
    cfg = config(save_every=2)
    straight, straight_rollout = cpe_driver(tmp_path / "a", 4, cfg)
    expected = steps_of(straight, 4)
    # B = 2 prompts x n = 2: 4 valid edits, K = 2 chosen at random each step
    assert all(len(selected) == 2 for _, selected, _ in expected)

    interrupted, _ = cpe_driver(tmp_path / "b", 4, cfg)
    done = steps_of(interrupted, 2)
    resumed, resumed_rollout = cpe_driver(tmp_path / "b", 4, cfg)
    checkpoint = resumed.checkpoints.latest()
    resumed.restore(checkpoint, read_driver_state(checkpoint))
    assert done + steps_of(resumed, 2) == expected
    assert [c.spec.seed for c in resumed_rollout.calls] == [
        c.spec.seed for c in straight_rollout.calls[4:]
    ]


class FakeEvaluator:
    """``Evaluator``: records when the driver prepares and runs it."""

    def __init__(self, log: list, every: int):
        self.log, self.every = log, every

    def prepare(self, step):
        self.log.append(("eval_prepare", step))

    def due(self, step):
        return step % self.every == 0

    def run(self, step):
        self.log.append(("eval", step))
        return {"eval/win_rate": 50.0 + step}


def test_eval_runs_after_the_sync_of_every_kth_step_and_joins_its_row(tmp_path):
    log, maker, learners, sync = fakes()
    d = driver(tmp_path, maker, learners, sync, total_steps=3, cfg=config(save_every=10))
    d.evaluator = FakeEvaluator(log, every=2)
    d.fit()
    assert log[0] == ("eval_prepare", 0)
    assert log.index(("eval", 2)) == log.index(("push", 2)) + 1
    assert [e for e in log if e[0] == "eval"] == [("eval", 2)]
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert rows[1]["eval/win_rate"] == 52.0 and "time/eval" in rows[1]
    assert "eval/win_rate" not in rows[0] and "eval/win_rate" not in rows[2]


def test_a_restart_during_a_steps_evaluation_counts_in_that_steps_row(tmp_path, caplog):
    log, maker, learners, sync = fakes()
    d = driver(tmp_path, maker, learners, sync, total_steps=3, cfg=config(save_every=10))

    class RestartInEval(FakeEvaluator):
        def run(self, step):
            d.faults.engine_restarted("grm engine 0", "generate", 1, 2, RuntimeError("gone"))
            return super().run(step)

    d.evaluator = RestartInEval(log, every=2)
    with caplog.at_level(logging.WARNING, logger="cpe.faults"):
        d.fit()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["faults/engine_restarts"] for r in rows] == [0.0, 1.0, 0.0]
    assert "grm engine 0 died during generate at step 2 (RuntimeError)" in caplog.text


def test_one_optimizer_step_per_batch_skips_the_pi_old_pass(tmp_path):
    from cpe.config import LearnerConfig
    from cpe.trainer.driver import needs_old_logp

    cfg = config()
    cfg.trainer.rollout_batch_prompts = cfg.learner.mini_batch_prompts = 2
    cfg.algorithm.edit_ratio = 0.5  # 2 x 4 originals + 4 edits: two mini-batches of 8
    assert needs_old_logp(cfg)
    cfg.algorithm.edit_ratio = 0.0  # no edit budget: the originals are one mini-batch
    assert not needs_old_logp(cfg)
    log, maker, learners, sync = fakes()
    d = driver(tmp_path, maker, learners, sync, total_steps=1, cfg=cfg)
    exp, batch, _ = d.run_step()
    assert learners.old_logp_asked == [False]
    assert batch.old_logp is None
    # edits still get mu from their own prompt; originals' behaviour is unused (zeros)
    edit = batch.is_edit.bool()
    on_edit = batch.response_mask[edit] > 0
    assert torch.all(batch.behaviour_logp[edit][on_edit] == learners.edit_logp)
    assert torch.all(batch.behaviour_logp[~edit] == 0)
    for changed in (
        {"ppo_epochs": 2},
        {"mini_batch_prompts": 1},
    ):
        other = config()
        other.trainer.rollout_batch_prompts = 2
        other.algorithm.edit_ratio = 0.0
        other.learner = LearnerConfig(**{"mini_batch_prompts": 2, **changed})
        assert needs_old_logp(other), changed
