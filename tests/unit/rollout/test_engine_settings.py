"""The exact options engines get on a GPU pool and on CPU (the GPU path cannot run here)."""

import typing

import pytest

from cpe.compose import load_config
from cpe.rollout.launch import engine_settings
from cpe.rollout.settings import EngineSettings
from cpe.rollout.vllm_adapter import LOGPROBS_MODE, LORA_RANK_SLOTS, llm_kwargs, lora_rank_slot
from cpe.weight_sync.cpu_extension import CPU_EXTENSION


def test_gpu_rollout_engine_gets_tensor_parallel_and_the_nccl_transfer_engine():
    cfg = load_config(["experiment=qwen2.5-7b"])
    rollout = engine_settings(cfg, "rollout", "/models/p", "bfloat16", 8192, index=1)
    assert rollout == EngineSettings(
        model_path="/models/p",
        dtype="bfloat16",
        seed=cfg.rollout.seed + 1,
        device="gpu",
        max_model_len=8192,
        kv_cache_gib=cfg.rollout.kv_cache_gib,
        gpu_memory_utilization=cfg.rollout.gpu_memory_utilization,
        enforce_eager=cfg.rollout.enforce_eager,
        tensor_parallel_size=cfg.cluster.pools.rollout.devices_per_engine,
        weight_transfer_backend="nccl",
    )
    # The GRM engines never receive weights: no transfer engine, their own TP size (2).
    grm = engine_settings(cfg, "grm", "/models/g", "bfloat16", 4096, index=0)
    assert grm.weight_transfer_backend is None and grm.tensor_parallel_size == 2


def test_llm_kwargs_on_gpu():
    settings = EngineSettings(
        "/m", dtype="bfloat16", seed=3, device="gpu", max_model_len=4096,
        gpu_memory_utilization=0.8, tensor_parallel_size=2, weight_transfer_backend="nccl",
    )  # fmt: skip
    assert llm_kwargs(settings) == {
        "model": "/m",
        "dtype": "bfloat16",
        "seed": 3,
        "max_model_len": 4096,
        "enforce_eager": True,
        "logprobs_mode": LOGPROBS_MODE,
        "worker_extension_cls": CPU_EXTENSION,
        "use_tqdm_on_load": False,
        "gpu_memory_utilization": 0.8,
        "tensor_parallel_size": 2,
        # vLLM's Ray executor would refuse the engine's one 2-GPU bundle
        "distributed_executor_backend": "mp",
        "weight_transfer_config": {"backend": "nccl"},
    }
    single = llm_kwargs(EngineSettings("/m", device="gpu", tensor_parallel_size=1))
    assert single["distributed_executor_backend"] == "uni"


def test_llm_kwargs_on_cpu_turn_off_chunked_prefill_and_ignore_gpu_knobs():
    kwargs = llm_kwargs(EngineSettings("/m", device="cpu", max_model_len=1024))
    assert kwargs["distributed_executor_backend"] == "uni"
    assert kwargs["enable_chunked_prefill"] is False
    assert kwargs["max_num_batched_tokens"] == 1024
    for gpu_only in ("gpu_memory_utilization", "tensor_parallel_size", "weight_transfer_config"):
        assert gpu_only not in kwargs


def test_cpu_preset_engines_use_the_object_store_path():
    cfg = load_config(["experiment=tiny_cpu"])
    settings = engine_settings(cfg, "rollout", "/m", "float32", 512, index=0)
    assert settings.weight_transfer_backend is None and settings.tensor_parallel_size == 1


def test_a_lora_engine_gets_one_adapter_slot_of_the_next_rank_vllm_accepts():
    kwargs = llm_kwargs(EngineSettings("/m", device="cpu", lora_rank=12))
    assert (kwargs["enable_lora"], kwargs["max_lora_rank"], kwargs["max_loras"]) == (True, 16, 1)
    assert "enable_lora" not in llm_kwargs(EngineSettings("/m", device="cpu"))
    assert [lora_rank_slot(r) for r in (1, 2, 8, 9, 320, 321, 512)] == [1, 8, 8, 16, 320, 512, 512]
    with pytest.raises(ValueError, match="LoRA rank 513 is above vLLM's largest"):
        lora_rank_slot(513)


def test_the_rank_slots_are_the_installed_vllms():
    from vllm.config.lora import MaxLoRARanks

    assert typing.get_args(MaxLoRARanks) == LORA_RANK_SLOTS


def test_adapter_sync_turns_lora_on_in_rollout_engines_only():
    from cpe.rollout.launch import engine_settings

    cfg = load_config(["experiment=tiny_cpu", "learner.lora.rank=8", "cluster.weight_sync=adapter"])
    assert engine_settings(cfg, "rollout", "/m", "float32", 512, index=0).lora_rank == 8
    assert engine_settings(cfg, "grm", "/g", "float32", 512, index=0).lora_rank == 0
    merged = load_config(["experiment=tiny_cpu", "learner.lora.rank=8"])  # object_store
    assert engine_settings(merged, "rollout", "/m", "float32", 512, index=0).lora_rank == 0


def test_a_gpu_engine_holds_all_its_gpus_in_one_bundle_of_its_pool():
    from cpe.cluster.placement import bundle_for, plan_pools

    cfg = load_config(["experiment=qwen2.5-7b"])
    for plan in plan_pools(cfg.cluster):
        if plan.name in ("rollout", "grm"):
            tp = getattr(cfg.cluster.pools, plan.name).devices_per_engine
            cpus = cfg.cluster.cpus_per_gpu
            assert bundle_for(plan, "gpu", cpus_per_gpu=cpus) == {
                "GPU": float(tp),
                "CPU": float(tp * cpus),
            }
            settings = engine_settings(cfg, plan.name, "/m", "bfloat16", 4096, index=0)
            kwargs = llm_kwargs(settings)
            assert kwargs["tensor_parallel_size"] == tp
            assert kwargs["distributed_executor_backend"] == ("mp" if tp > 1 else "uni")
