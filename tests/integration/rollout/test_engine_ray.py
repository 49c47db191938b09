"""The engine as a real Ray actor behind an EnginePool: generate, push weights through
the object store, check log-probs against transformers, health, shutdown."""

from __future__ import annotations

import torch
from hf_reference import hf_token_logprobs, max_abs_diff, perturb_, split_buckets

from cpe.types import SamplingSpec


def test_engine_actor_pool_round_trip(ray_session, tiny_model_path, hf_model_factory, chat_prompts):
    from cpe.rollout.engine import VLLMEngine
    from cpe.rollout.pool import EnginePool
    from cpe.rollout.settings import EngineSettings

    ray = ray_session
    actor = (
        ray.remote(VLLMEngine)
        .options(num_cpus=1)
        .remote(EngineSettings(tiny_model_path, dtype="float32", seed=0, max_model_len=512))
    )
    pool = EnginePool([actor])

    groups = pool.generate(chat_prompts, SamplingSpec(n=2, max_tokens=8, seed=0))
    assert [len(g) for g in groups] == [2, 2]
    assert [g[0].prompt_ids for g in groups] == chat_prompts

    model = hf_model_factory()
    perturb_(model, seed=5)
    refs = [
        ray.put(bucket)
        for bucket in split_buckets([(n, p.detach()) for n, p in model.named_parameters()])
    ]
    [info] = pool.update_weights(refs, version=3)
    assert info["version"] == 3 and info["missing"] == []

    prompt, response = chat_prompts[0], chat_prompts[1][2:12]
    [engine_lp] = pool.token_logprobs([prompt], [response])
    assert max_abs_diff(engine_lp, hf_token_logprobs(model, prompt, response)) < 1e-4

    [health] = pool.health()
    assert health["alive"] and health["weight_version"] == 3
    assert health["model_path"] == tiny_model_path
    pool.shutdown()
    assert ray.get(actor.health.remote())["alive"] is False
    ray.kill(actor)


def test_an_engine_serves_each_pushed_lora_adapter_as_the_merged_model_computes(
    ray_session, tiny_model_path, hf_model_factory, chat_prompts, tmp_path
):
    from peft import LoraConfig, get_peft_model

    from cpe.learner.lora import adapter_files
    from cpe.rollout.engine import VLLMEngine
    from cpe.rollout.pool import EnginePool
    from cpe.rollout.settings import EngineSettings

    ray = ray_session
    settings = EngineSettings(tiny_model_path, dtype="float32", max_model_len=512, lora_rank=8)
    actor = ray.remote(VLLMEngine).options(num_cpus=1).remote(settings)
    pool = EnginePool([actor])
    prompt, response = chat_prompts[0], chat_prompts[1][2:12]
    [base_lp] = pool.token_logprobs([prompt], [response])
    target = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    for version, seed in ((1, 3), (2, 4)):
        model = get_peft_model(
            hf_model_factory(), LoraConfig(r=8, lora_alpha=16, target_modules=target)
        )
        torch.manual_seed(seed)
        for name, param in model.named_parameters():
            if "lora_B" in name:  # PEFT starts B at zero: make the adapter matter
                param.data.normal_(0, 0.05)
        files = adapter_files(model, gather=False)
        [load] = pool.load_adapter(ray.put(files), version)
        assert load["bytes"] == sum(len(d) for d in files.values())
        [engine_lp] = pool.token_logprobs([prompt], [response])
        merged = model.merge_and_unload().eval()
        assert max_abs_diff(engine_lp, hf_token_logprobs(merged, prompt, response)) < 1e-4
        assert max_abs_diff(engine_lp, torch.tensor(base_lp)) > 1e-2  # the adapter is in use
    [health] = pool.health()
    assert health["weight_version"] == 2
    pool.shutdown()
    ray.kill(actor)
