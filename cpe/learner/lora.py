"""LoRA adapters on the policy (PEFT), and the policy's weights with them folded in.

The engines and the HF export get merged weights under the base model's own names, so
vLLM samples from exactly the policy being trained and a checkpoint loads anywhere a
full model does; the adapter itself is saved beside it for per-user serving.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from cpe.config import LoraConfig

ADAPTER = "default"  # PEFT's name for the one adapter get_peft_model adds
_PEFT_PREFIX = "base_model.model."


# Linear layers only: PEFT keeps embedding adapters under other names, and a tied LM head
# is listed once (as the embedding), so adapters there would miss the merged export.
UNSUPPORTED_TARGETS = ("embed_tokens", "lm_head")


def with_lora(module: nn.Module, cfg: LoraConfig) -> nn.Module:
    """``module`` with trainable LoRA adapters on ``cfg.target_modules``, everything else
    frozen. No LoRA dropout: the loss's π_θ must be the function that scored pi_old."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    config = PeftLoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=0.0,
        target_modules=list(cfg.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(module, config)


def base_name(peft_name: str) -> str:
    """The base model's parameter name of a PEFT-wrapped one:
    ``base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight`` ->
    ``model.layers.0.self_attn.q_proj.weight``."""
    return peft_name.removeprefix(_PEFT_PREFIX).replace(".base_layer.", ".")


def merged_weights(peft_model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Every base weight by its base name, with its adapter's ``scale * B @ A`` added.

    Computed out of place (merging into the frozen weights and unmerging after each sync
    would leave rounding drift in them) and one layer at a time, so only one delta
    exists at once beside the merged copies.
    """
    from peft.tuners.lora import LoraLayer

    adapted = {
        f"{name}.base_layer.weight": module
        for name, module in peft_model.named_modules()
        if isinstance(module, LoraLayer) and ADAPTER in module.lora_A
    }
    out = []
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if ".lora_" in name:
                continue
            weight = param.detach()
            if name in adapted:
                weight = weight + adapted[name].get_delta_weight(ADAPTER).to(weight.dtype)
            out.append((base_name(name), weight))
    return out


# What PEFT's save_pretrained writes that a loader reads (it also writes a model card).
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def adapter_files(peft_model: nn.Module, gather: bool) -> dict[str, bytes]:
    """The adapter in PEFT's saved form, file name -> bytes: what vLLM's LoRA loader and
    ``PeftModel.from_pretrained`` read. ``gather``: ZeRO-3 partitions the adapter
    weights; every rank must then call this (a collective), all get the files."""
    import deepspeed

    params = [p for name, p in peft_model.named_parameters() if ".lora_" in name]
    with deepspeed.zero.GatheredParameters(params, modifier_rank=None, enabled=gather):
        with tempfile.TemporaryDirectory(prefix="cpe-adapter-") as folder:
            peft_model.save_pretrained(folder)
            return {name: (Path(folder) / name).read_bytes() for name in ADAPTER_FILES}
