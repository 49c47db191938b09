"""Everything an engine is started with, as one typed, picklable object."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSettings:
    model_path: str
    dtype: str = "auto"
    seed: int = 0
    device: str = "cpu"  # cpu: in-process vLLM CPU engine; gpu: vLLM's multiprocess engine
    max_model_len: int = 2048
    kv_cache_gib: float = 1.0  # CPU only
    gpu_memory_utilization: float = 0.9  # GPU only
    enforce_eager: bool = True
    tensor_parallel_size: int = 1  # GPU only
    # "nccl" turns on vLLM's native weight-transfer API (GPU, cluster.weight_sync=nccl).
    weight_transfer_backend: str | None = None
