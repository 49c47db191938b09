"""LoRA on the policy: base names, and merged weights equal to PEFT's own merge."""

import pytest
import torch
from unit.fakes import tiny_llama

from cpe.config import LoraConfig
from cpe.learner.lora import base_name, merged_weights, with_lora

pytestmark = pytest.mark.unit


def test_base_name_strips_the_peft_wrapping():
    assert (
        base_name("base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight")
        == "model.layers.0.self_attn.q_proj.weight"
    )
    assert base_name("base_model.model.model.embed_tokens.weight") == "model.embed_tokens.weight"


def test_merged_weights_equal_peft_merge_and_keep_the_base_untouched():
    base = tiny_llama()
    names = [n for n, _ in base.named_parameters()]
    model = with_lora(
        tiny_llama(), LoraConfig(rank=4, alpha=8.0, target_modules=["q_proj", "down_proj"])
    )
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n in trainable)
    with torch.no_grad():  # B starts at 0: give the adapters something to add
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    frozen_before = {
        n: p.detach().clone() for n, p in model.named_parameters() if ".lora_" not in n
    }

    merged = dict(merged_weights(model))
    assert list(merged) == names  # the base model's names, in its order, tied head once
    reference = model.merge_and_unload().state_dict()
    for name, weight in merged.items():
        assert torch.allclose(weight, reference[name], atol=1e-6), name
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.allclose(merged[q], base.get_parameter(q))  # the adapter is in
    # merged out of place: what merge_and_unload changed was a copy's concern, ours kept
    assert all(torch.equal(frozen_before[n], v) for n, v in frozen_before.items())
