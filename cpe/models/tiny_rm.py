"""A tiny Bradley-Terry reward model folder for tests: the tiny Qwen2's backbone with a
head set by hand, written as :func:`cpe.reward.bt_model.save_reward_model` writes one."""

from __future__ import annotations

from pathlib import Path

import torch

from cpe.learner.value import ValueModel


def tiny_value_model(tiny_path: str | Path, head_seed: int | None = 0, bias: float = 0.0):
    """The tiny model's backbone with a head: Gaussian weights from ``head_seed`` (None:
    zero weights, so every answer's raw reward is ``bias``)."""
    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(str(tiny_path), dtype=torch.float32)
    model = ValueModel(backbone, backbone.config.hidden_size)
    with torch.no_grad():
        if head_seed is not None:
            generator = torch.Generator().manual_seed(head_seed)
            shape = model.value_head.weight.shape
            model.value_head.weight.copy_(torch.randn(shape, generator=generator))
        model.value_head.bias.fill_(bias)
    return model.eval()


def build_tiny_reward_model(
    out: str | Path,
    tiny_path: str | Path,
    mean: float = 0.5,
    std: float = 2.0,
    head_seed: int | None = 0,
    bias: float = 0.0,
) -> Path:
    """A reward model folder at ``out`` served with RewardNorm(mean, std)."""
    from cpe.reward.bt_model import RewardNorm, save_reward_model

    model = tiny_value_model(tiny_path, head_seed, bias)
    prefix = model.backbone.base_model_prefix
    norm = RewardNorm(mean, std, answers=8)
    return save_reward_model(out, list(model.named_parameters()), tiny_path, prefix, norm)
