"""DeepSpeed config dict and lr schedule built from LearnerConfig."""

import math

import pytest
import torch

from cpe.config import LearnerConfig
from cpe.learner.ds_config import build_ds_config, lr_scheduler_factory


def test_actor_config_carries_the_learner_settings():
    cfg = LearnerConfig(
        zero_stage=3,
        actor_lr=2e-6,
        weight_decay=0.05,
        micro_batch_size=3,
        grad_clip=0.7,
        zero_bucket_elements=1000,
    )
    ds = build_ds_config(cfg, "actor", world_size=2, grad_accum_steps=4)
    assert ds["zero_optimization"] == {
        "stage": 3,
        "reduce_bucket_size": 1000,
        "allgather_bucket_size": 1000,
    }
    assert ds["gradient_clipping"] == 0.7
    assert ds["train_micro_batch_size_per_gpu"] == 3
    assert ds["gradient_accumulation_steps"] == 4
    assert ds["train_batch_size"] == 3 * 4 * 2
    opt = ds["optimizer"]
    assert opt["type"] == "AdamW"
    assert opt["params"]["lr"] == 2e-6 and opt["params"]["weight_decay"] == 0.05
    assert opt["params"]["torch_adam"] is True
    assert ds["bf16"] == {"enabled": False}


def test_critic_uses_critic_lr():
    cfg = LearnerConfig(actor_lr=1e-6, critic_lr=1e-5)
    assert build_ds_config(cfg, "critic")["optimizer"]["params"]["lr"] == 1e-5


@pytest.mark.parametrize(
    "device,dtype,bf16",
    [("gpu", "bfloat16", True), ("gpu", "float32", False), ("cpu", "bfloat16", False)],
)
def test_bf16_only_on_gpu(device, dtype, bf16):
    assert build_ds_config(LearnerConfig(), "actor", device, dtype)["bf16"]["enabled"] is bf16


@pytest.mark.parametrize("bad", [{"role": "judge"}, {"device": "tpu"}, {"dtype": "fp8"}])
def test_unknown_choices_are_refused(bad):
    args = {"role": "actor", "device": "cpu", "dtype": "float32", **bad}
    with pytest.raises(ValueError):
        build_ds_config(LearnerConfig(), **args)


def test_overrides_merge_deeply_without_touching_the_base():
    cfg = LearnerConfig(zero_stage=3)
    base = build_ds_config(cfg, "actor", "cpu", "float32")
    extra = {"zero_optimization": {"stage3_param_persistence_threshold": 0}}
    merged = build_ds_config(cfg, "actor", "cpu", "float32", overrides=extra)
    assert merged["zero_optimization"] == {
        **base["zero_optimization"],
        "stage3_param_persistence_threshold": 0,
    }
    assert merged["zero_optimization"]["stage"] == 3
    assert build_ds_config(cfg, "actor", "cpu", "float32") == base


def _lrs(cfg, steps, total_steps=None, state=None):
    """The lr (base 1) of each of the next ``steps`` optimizer steps, and the scheduler."""
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = lr_scheduler_factory(cfg, total_steps)(opt)
    if state is not None:  # as DeepSpeed resumes: optimizer and scheduler state
        opt.load_state_dict(state[0])
        sched.load_state_dict(state[1])
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs, (opt.state_dict(), sched.state_dict())


def test_constant_schedule_with_warmup():
    lrs, _ = _lrs(LearnerConfig(lr_schedule="constant", warmup_steps=4), 6)
    assert lrs == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert _lrs(LearnerConfig(), 3)[0] == [1.0, 1.0, 1.0]


def test_cosine_schedule_decays_to_zero_after_warmup():
    f, _ = _lrs(LearnerConfig(lr_schedule="cosine", warmup_steps=2), 21, total_steps=12)
    assert f[0] == 0.5 and f[1] == 1.0
    assert f[2] == pytest.approx(1.0)
    assert f[7] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f[12] == pytest.approx(0.0) and f[20] == pytest.approx(0.0)


def test_cosine_without_warmup_starts_at_one():
    f, _ = _lrs(LearnerConfig(lr_schedule="cosine"), 5, total_steps=4)
    assert f == pytest.approx([0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(5)])


def test_cosine_needs_total_steps_and_unknown_schedules_are_refused():
    with pytest.raises(ValueError, match="total"):
        lr_scheduler_factory(LearnerConfig(lr_schedule="cosine"))
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_scheduler_factory(LearnerConfig(lr_schedule="linear"))


@pytest.mark.filterwarnings("error")
def test_scheduler_factory_drives_a_torch_optimizer():
    lrs, _ = _lrs(LearnerConfig(warmup_steps=2), 3)
    assert lrs == [0.5, 1.0, 1.0]


def test_resumed_scheduler_continues_the_schedule():
    cfg = LearnerConfig(lr_schedule="cosine", warmup_steps=2)
    whole, _ = _lrs(cfg, 8, total_steps=8)
    first, state = _lrs(cfg, 3, total_steps=8)
    rest, _ = _lrs(cfg, 5, total_steps=8, state=state)
    assert first + rest == whole
