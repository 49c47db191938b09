"""grm.max_invalid_share in a real step: the real Driver and makers, a GRMScorer over the
openai backend talking to a loopback chat-completions server that turns to garbage after
the first step. Only the learners and the weight sync are fakes (``unit.fakes``)."""

from __future__ import annotations

import threading

import pytest
import torch
from unit.fakes import CHARS, FakeLearners, FakeRollout, FakeSync, make_records
from unit.reward.grm_fakes import Response

from cpe.config import (
    CPEConfig,
    GRMConfig,
    LoggingConfig,
    OpenAIBackendConfig,
    RolloutConfig,
    TrainerConfig,
)
from cpe.data.cursor import PromptCursor
from cpe.prompts import DEFAULT
from cpe.reward import GRMError, build_grm
from cpe.trainer.checkpoint import CheckpointManager
from cpe.trainer.driver import Driver
from cpe.trainer.makers import CPEMaker, MakerSettings, PPOMaker, Prompter
from cpe.trainer.metrics import MetricsLogger, read_metrics
from cpe.trainer.pipeline import PipelinedCPEMaker
from cpe.trainer.timing import PhaseTimer

HTML = Response(
    content=None, body="<html>502 Bad Gateway</html>", headers={"Content-Type": "text/html"}
)


@pytest.fixture(autouse=True)
def keep_torch_rng():
    state = torch.get_rng_state()
    yield
    torch.set_rng_state(state)


class Endpoint:
    """Good replies until ``break_answers(predicate)``; then garbage for the answers the
    predicate picks."""

    def __init__(self, chat_server):
        self.broken = threading.Event()
        self.picks = lambda answer: True
        self.server = chat_server(self.respond)

    def break_answers(self, picks=lambda answer: True) -> None:
        self.picks = picks
        self.broken.set()

    def respond(self, n, body) -> Response:
        answer = body["messages"][0]["content"].split("<answer>")[1].split("</answer>")[0]
        return HTML if self.broken.is_set() and self.picks(answer.strip()) else Response()


def config(server, max_invalid_share: float) -> CPEConfig:
    endpoint = OpenAIBackendConfig(base_url=server.base_url, api_key_env="", max_retries=0)
    grm = GRMConfig(
        backend="openai",
        guided_decoding=False,
        retries=0,
        openai=endpoint,
        max_invalid_share=max_invalid_share,
    )
    return CPEConfig(
        grm=grm,
        rollout=RolloutConfig(n=2, max_new_tokens=8, edit_max_new_tokens=8),
        trainer=TrainerConfig(save_every=1, keep_checkpoints=5),
        logging=LoggingConfig(wandb_mode="disabled", progress=False, sample_rows=2),
    )


def answer(prompt: str, index: int) -> str:
    return "edited" if "<draft_answer>" in prompt else f"answer {index}"


def driver(run_dir, cfg: CPEConfig, maker_cls, **kwargs) -> tuple[Driver, FakeLearners]:
    settings = MakerSettings.from_config(cfg, divisor=1)  # reads grm.max_invalid_share
    prompter = Prompter(CHARS, DEFAULT, 100_000, 100_000)
    maker = maker_cls(
        FakeRollout(answer), build_grm(cfg.grm), prompter, settings, PhaseTimer(), **kwargs
    )
    learners = FakeLearners()
    d = Driver(
        cfg=cfg,
        maker=maker,
        learners=learners,
        sync=FakeSync(),
        cursor=PromptCursor(make_records(4), batch_size=2, seed=3),
        checkpoints=CheckpointManager(run_dir, keep=5),
        logger=MetricsLogger(run_dir, wandb_mode="disabled"),
        timer=PhaseTimer(),
        pad_id=0,
        total_steps=3,
    )
    return d, learners


MAKERS = {
    "ppo": (PPOMaker, {}),
    "cpe": (CPEMaker, {}),
    "cpe-pipelined": (PipelinedCPEMaker, {"chunks": 2}),
}


@pytest.mark.parametrize("maker", MAKERS.values(), ids=MAKERS.keys())
def test_a_step_of_mostly_garbage_stops_before_its_update(chat_server, tmp_path, maker):
    endpoint = Endpoint(chat_server)
    maker_cls, kwargs = maker
    d, learners = driver(tmp_path, config(endpoint.server, 0.5), maker_cls, **kwargs)
    d.run_step()
    endpoint.break_answers()
    with pytest.raises(GRMError) as info:
        d.run_step()
    message = str(info.value)
    assert "GRM results invalid this step (100% > grm.max_invalid_share=50%)" in message
    assert "last error: malformed chat-completions response: '<html>502" in message
    assert [step for _, step in learners.train_inputs] == [1]  # step 2 never trained
    d.logger.close()
    assert [row["step"] for row in read_metrics(tmp_path / "metrics.jsonl")] == [1]
    assert [step for step, _ in d.checkpoints.complete()] == [1]


def test_at_the_threshold_the_step_trains_without_the_invalid_rows(chat_server, tmp_path):
    endpoint = Endpoint(chat_server)
    d, learners = driver(tmp_path, config(endpoint.server, 0.5), PPOMaker)
    endpoint.break_answers(lambda a: a == "answer 1")  # half of the B x n = 4 originals
    exp, batch, metrics = d.run_step()
    assert metrics["grm/invalid_rate"] == 0.5
    assert [s.reward for s in exp.originals if s.text == "answer 1"] == [None, None]
    assert [step for _, step in learners.train_inputs] == [1]
    assert (
        batch.response_mask[[i for i, s in enumerate(exp.batch_samples) if s.reward is None]].sum()
        == 0
    )


def test_just_above_the_threshold_stops(chat_server, tmp_path):
    endpoint = Endpoint(chat_server)
    d, learners = driver(tmp_path, config(endpoint.server, 0.49), PPOMaker)
    endpoint.break_answers(lambda a: a == "answer 1")
    with pytest.raises(GRMError, match=r"2 of 4 GRM results invalid .*grm.max_invalid_share=49%"):
        d.run_step()
    assert learners.train_inputs == []
