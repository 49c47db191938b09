"""The memory estimates on a hand-sized model (every figure computed by hand)."""

import pytest

from cpe.cluster.memory import (
    ARCHS,
    GIB,
    RUNTIME_GIB,
    Shape,
    engine_need,
    kv_capacity_tokens,
    learner_need,
    lora_params,
)

# 2 layers, hidden 8, MLP 16, vocab 10, 2 heads with 1 KV head (kv_dim 4), untied head.
TOY = Shape(layers=2, hidden=8, intermediate=16, vocab=10, heads=2, kv_heads=1)


def test_parameters_follow_the_layout():
    # attention 2*8*8 + 2*8*4 + biases (8 + 2*4) = 208; MLP 3*8*16 = 384; norms 16
    assert TOY.layer_params() == 208 + 384 + 16
    assert TOY.params() == 80 + 2 * 608 + 8 + 80  # embedding, layers, final norm, head
    assert TOY.params(lm_head=False) == 1304
    assert TOY.kv_bytes_per_token() == 2 * 2 * 4 * 2  # k and v, layers, kv_dim, bf16
    # the catalog's shapes give the published parameter counts
    assert ARCHS["qwen2.5-7b"].params() == 7_615_616_512
    assert ARCHS["qwen2.5-14b"].params() == 14_770_033_664
    assert ARCHS["smollm2-135m"].params() == 134_515_008


def test_hf_config_keys_make_the_same_shape():
    config = {
        "model_type": "qwen2", "num_hidden_layers": 2, "hidden_size": 8,
        "intermediate_size": 16, "vocab_size": 10, "num_attention_heads": 2,
        "num_key_value_heads": 1, "tie_word_embeddings": False,
    }  # fmt: skip
    assert Shape.from_hf_config(config) == TOY
    llama = Shape.from_hf_config({**config, "model_type": "llama", "tie_word_embeddings": True})
    assert not llama.qkv_bias and llama.tied


def bytes_of(need):
    return {k: round(v * GIB) for k, v in need.parts.items()}


def test_zero_stages_shard_optimizer_then_gradients_then_weights():
    args = dict(micro_batch=1, seq_len=4, response_len=2, checkpointing=False, gpu_gib=1.0)
    stage2 = bytes_of(learner_need("policy", TOY, ranks=2, zero_stage=2, **args))
    # 1384 params: weights 2 B each unsharded, grads 2 B / 2 ranks, Adam 12 B / 2 ranks;
    # activations 2 layers x 2*1*4*(8*8 + 3*16) = 2 x 896; logits: 1 row x 10 vocab x
    # (2 B bf16 x 2 positions + 8 B fp32 copy and log-softmax x 2 positions)
    assert stage2 == {
        "weights": 2768, "grads": 1384, "optimizer": 8304, "activations": 1792,
        "logits": 200, "runtime": round(RUNTIME_GIB * GIB),
    }  # fmt: skip
    chunked = bytes_of(learner_need("policy", TOY, ranks=2, zero_stage=2, logprob_chunk=1, **args))
    assert chunked["logits"] == 10 * (2 * 2 + 8 * 1)
    stage3 = bytes_of(learner_need("policy", TOY, ranks=2, zero_stage=3, **args))
    assert stage3["weights"] == 1384
    stage0 = bytes_of(learner_need("policy", TOY, ranks=2, zero_stage=0, **args))
    assert (stage0["grads"], stage0["optimizer"]) == (2768, 16608)


def test_checkpointing_keeps_each_layers_input_and_one_layer():
    args = dict(ranks=1, zero_stage=0, micro_batch=1, seq_len=4, response_len=2, gpu_gib=1.0)
    kept = bytes_of(learner_need("policy", TOY, checkpointing=True, **args))
    assert kept["activations"] == 2 * 2 * 1 * 4 * 8 + 896


def test_value_and_reference_pools():
    args = dict(ranks=1, zero_stage=0, micro_batch=1, seq_len=4, response_len=2)
    value = bytes_of(learner_need("value", TOY, checkpointing=False, gpu_gib=1.0, **args))
    assert value["weights"] == 2 * (1304 + 8 + 1) and value["logits"] == 0  # scalar head
    ref = bytes_of(learner_need("reference", TOY, checkpointing=False, gpu_gib=1.0, **args))
    assert ref["grads"] == ref["optimizer"] == ref["activations"] == 0
    lora = bytes_of(
        learner_need("policy", TOY, checkpointing=False, gpu_gib=1.0, trainable=416, **args)
    )
    assert (lora["weights"], lora["grads"], lora["optimizer"]) == (2768, 832, 4992)


def test_lora_trainable_parameters():
    # per layer: rank 4 x ((8 + 8) q + (8 + 4) v + (16 + 8) down) = 208; 2 layers
    assert lora_params(TOY, 4, ["q_proj", "v_proj", "down_proj", "embed_tokens"]) == 416


def test_an_engine_pays_sharded_weights_and_one_sequences_cache_within_its_share():
    need = engine_need("grm", TOY, engines=3, tp=2, max_len=100, gpu_gib=10.0, util=0.5)
    assert need.gpus == 6 and need.budget_gib == 5.0
    assert bytes_of(need)["weights"] == 1384 and bytes_of(need)["kv_one_sequence"] == 1600
    assert kv_capacity_tokens(need, TOY, tp=2) == pytest.approx((2 * GIB - 1384) / 16, abs=1)
    assert need.shortfall_gib == 0
    tight = engine_need("grm", TOY, engines=1, tp=1, max_len=100, gpu_gib=4.0, util=0.5)
    assert tight.shortfall_gib == pytest.approx(tight.total_gib - 2.0)
