"""In-place weight updates of a running vLLM engine on CPU (a vLLM worker extension).

vLLM loads this class into its worker by dotted path
(``LLM(worker_extension_cls=CPU_EXTENSION)``); the engine then calls its methods with
``llm.collective_rpc("cpe_load_weights", args=(bucket,))``. The methods run inside the
worker, next to the model.

Why not ``model.load_weights``: after loading, vLLM's CPU build replaces every linear
weight by an empty tensor and keeps a prepacked oneDNN copy, so writing into the
parameters changes nothing. vLLM's layerwise reload (the machinery behind
``reload_weights`` and the GPU weight-transfer engines) puts each layer back into
checkpoint format on the meta device, buffers incoming tensors until a layer is
complete, then materialises it, loads it and re-runs ``process_weights_after_loading``
(which re-packs). That handles buckets that split a fused layer (q/k/v, gate/up).

What it misses, and we fix: a tied output head (``lm_head`` sharing the embedding's
parameter) is a module of its own with its own prepacked copy of the embedding. When
the update carries no ``lm_head.weight`` (HF ``named_parameters()`` and saved
checkpoints drop the tied alias) the head is never re-packed and keeps the old
weights, although the shared parameter holds the new ones. After every update we
re-pack every unquantized embedding-like module from its (up-to-date) parameter.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

CPU_EXTENSION = "cpe.weight_sync.cpu_extension.CpuWeightUpdateExtension"


class CpuWeightUpdateExtension:
    """Mixed into vLLM's worker; ``self`` is the worker (``self.model_runner`` etc.).

    Protocol: ``cpe_load_weights(bucket)`` once per bucket (the first call starts an
    update), then ``cpe_finish_weight_update()``. The model must not run in between
    (layers sit on the meta device until finished); the engine wrapper enforces it.
    """

    def cpe_load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> int:
        model = self.model_runner.get_model()
        state = _update_state(self)
        if state.get("expected") is None:
            state["expected"] = {name for name, _ in model.named_parameters()}
            state["loaded"] = set()
            with _vllm_config_context(self):
                _reload_api().initialize_layerwise_reload(model)
        weights = [(name, tensor.detach()) for name, tensor in named_tensors]
        with _vllm_config_context(self), torch.no_grad():
            loaded = model.load_weights(iter(weights))
        state["loaded"].update(loaded or ())
        return len(weights)

    def cpe_finish_weight_update(self, strict: bool = True) -> dict:
        model = self.model_runner.get_model()
        state = _update_state(self)
        if state.get("expected") is None:
            raise RuntimeError("cpe_finish_weight_update called before any cpe_load_weights")
        expected, loaded = state.pop("expected"), state.pop("loaded")
        with _vllm_config_context(self), torch.no_grad():
            _reload_api().finalize_layerwise_reload(model, self.model_config)
            repacked = repack_embedding_heads(model)
        _reset_runner_caches(self.model_runner)
        missing = sorted(expected - loaded)
        if strict and missing:
            # Layers that got nothing kept their old tensors: a partial sync would
            # silently mix policies, so refuse it loudly.
            raise RuntimeError(
                f"weight update left {len(missing)} parameters unchanged: {missing[:8]}"
            )
        return {"loaded": len(loaded), "missing": missing, "repacked": repacked}


def repack_embedding_heads(model: torch.nn.Module) -> list[str]:
    """Re-run CPU post-load processing on unquantized vocab embeddings and LM heads.

    Safe to repeat: embeddings keep their weight tensor (vLLM packs them with
    ``remove_weight=False``), so re-packing reads the current, updated values.
    """
    from vllm.model_executor.layers.vocab_parallel_embedding import (
        UnquantizedEmbeddingMethod,
        VocabParallelEmbedding,
    )

    repacked = []
    for name, module in model.named_modules():
        if not isinstance(module, VocabParallelEmbedding):
            continue
        method = getattr(module, "quant_method", None)
        if isinstance(method, UnquantizedEmbeddingMethod) and module.weight.numel():
            method.process_weights_after_loading(module)
            repacked.append(name)
    return repacked


def _update_state(worker) -> dict:
    if not hasattr(worker, "_cpe_update_state"):
        worker._cpe_update_state = {}
    return worker._cpe_update_state


def _reload_api():
    from vllm.model_executor.model_loader import reload

    return reload


def _vllm_config_context(worker):
    from vllm.config import set_current_vllm_config

    return set_current_vllm_config(worker.vllm_config)


def _reset_runner_caches(runner) -> None:
    # Same invalidation vLLM's own reload_weights performs on the runner.
    for method in ("reset_lora_state", "reset_encoder_cache", "reset_mm_cache"):
        fn = getattr(runner, method, None)
        if fn is not None:
            fn()
