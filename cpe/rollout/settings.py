"""Everything an engine is started with, as one typed, picklable object."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cpe.models.paths import DEFAULT_CACHE, resolve_model_path


@dataclass(frozen=True)
class EngineSettings:
    model_path: str  # a folder on the engine's node, or fixture:NAME (built there)
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
    model_cache_dir: str = DEFAULT_CACHE  # where a fixture model is built on the engine's node
    # > 0: vLLM's LoRA support on, for adapters up to this rank (cluster.weight_sync=adapter).
    lora_rank: int = 0

    def on_this_node(self) -> EngineSettings:
        """These settings with ``model_path`` a folder of the calling process's node."""
        return replace(self, model_path=resolve_model_path(self.model_path, self.model_cache_dir))
