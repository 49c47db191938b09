"""One vLLM engine behind typed methods; a Ray actor when wrapped with ``ray.remote``
(the system wiring does that, so importing this module needs no Ray).

Prompts arrive as token ids (the driver applies chat templates). Weight updates
arrive in buckets of ``(HF name, tensor)`` pairs; ``update_weights`` may be called
several times, then ``finish_weight_update`` makes the new weights live. Ray runs an
actor's calls one at a time, so no generation can interleave with a half-loaded
model; a local caller gets an error if it tries.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cpe.cluster.threads import bundle_threads
from cpe.logs import quiet_third_party
from cpe.rollout import vllm_adapter as va
from cpe.rollout.settings import EngineSettings
from cpe.types import Generation, SamplingSpec
from cpe.weight_sync.buckets import WireEntry, from_wire


class VLLMEngine:
    def __init__(self, settings: EngineSettings) -> None:
        quiet_third_party(settings.device)
        # Before vLLM starts: its CPU worker refuses set_num_threads afterwards.
        torch.set_num_threads(bundle_threads())
        started = time.perf_counter()
        self.settings = settings = settings.on_this_node()
        self.weight_version = 0
        self._updating = False
        self._broken: str | None = None
        self._lora: Any = None  # the adapter every request goes through (LoRA runs)
        self._lora_loads = 0
        self._adapter_root: Path | None = None
        self._llm = va.make_llm(settings)
        self.startup_s = time.perf_counter() - started

    # -- generation -------------------------------------------------------------
    def generate(
        self, prompt_ids: Sequence[Sequence[int]], spec: SamplingSpec
    ) -> list[list[Generation]]:
        if not prompt_ids:
            return []
        llm = self._ready()
        params = [
            va.to_sampling_params(spec, seed=va.prompt_seed(spec.seed, p)) for p in prompt_ids
        ]
        outputs = va.run(llm, va.to_prompts(prompt_ids), params, self._lora)
        return va.to_generations(outputs, top=spec.top_logprobs > 0)

    def token_logprobs(
        self, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]]
    ) -> list[list[float]]:
        """The engine's raw log-prob of every given response token, given its prompt."""
        if len(prompt_ids) != len(response_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(response_ids)} responses")
        if not prompt_ids:
            return []
        for prompt in prompt_ids:
            if not prompt:
                raise ValueError("token_logprobs needs a non-empty prompt for every response")
        llm = self._ready()
        joined = [list(p) + list(r) for p, r in zip(prompt_ids, response_ids, strict=True)]
        outputs = va.run(llm, va.to_prompts(joined), va.prompt_logprob_params(), self._lora)
        return [
            va.prompt_token_logprobs(out, len(p))
            for out, p in zip(outputs, prompt_ids, strict=True)
        ]

    # -- weights ----------------------------------------------------------------
    def update_weights(self, named_tensors: Sequence[tuple[str, torch.Tensor]]) -> int:
        """Load one bucket of HF-named tensors; the first bucket starts an update."""
        llm = self._alive()
        self._updating = True
        try:
            return va.worker_rpc(llm, "cpe_load_weights", list(named_tensors))[0]
        except BaseException:
            self._abandon_update()
            raise

    def finish_weight_update(self, version: int | None = None, strict: bool = True) -> dict:
        """Make the loaded buckets live; returns what was loaded and how long it took."""
        llm = self._alive()
        if not self._updating:
            raise RuntimeError("finish_weight_update without update_weights")
        started = time.perf_counter()
        try:
            info = va.worker_rpc(llm, "cpe_finish_weight_update", strict=strict)[0]
        except BaseException as exc:
            self._broken = f"weight update failed: {exc}"
            raise
        finally:
            self._updating = False
        self._broken = None
        va.reset_prefix_cache(llm)
        self.weight_version = self.weight_version + 1 if version is None else version
        return {**info, "version": self.weight_version, "finish_s": time.perf_counter() - started}

    def load_weight_buckets(
        self, buckets: Sequence[Sequence[WireEntry]], version: int | None = None
    ) -> dict:
        """Every bucket (in the object-store form, ``buckets.to_wire``), then finish; the
        result adds the bytes loaded and the seconds spent loading them (``load_s``,
        before ``finish_s``)."""
        started = time.perf_counter()
        nbytes = 0
        for wire in buckets:
            bucket = from_wire(list(wire))
            self.update_weights(bucket)
            nbytes += sum(t.nbytes for _, t in bucket)
        load_s = time.perf_counter() - started
        return {**self.finish_weight_update(version), "bytes": nbytes, "load_s": load_s}

    def load_adapter(self, files: dict[str, bytes], version: int) -> dict:
        """Serve the LoRA adapter given as its saved files (``lora.adapter_files``) from
        now on; the base weights stay as they are."""
        if not self.settings.lora_rank:
            raise RuntimeError("load_adapter needs an engine started with lora_rank > 0")
        llm = self._ready()
        started = time.perf_counter()
        if self._adapter_root is None:
            self._adapter_root = Path(tempfile.mkdtemp(prefix="cpe-lora-"))
        self._lora_loads += 1
        folder = self._adapter_root / str(self._lora_loads)
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        old, self._lora = self._lora, va.lora_request(str(folder), self._lora_loads)
        va.swap_lora(llm, self._lora, old)
        if old is not None:
            shutil.rmtree(old.lora_path, ignore_errors=True)
        va.reset_prefix_cache(llm)
        self.weight_version = version
        load_s = time.perf_counter() - started
        return {"bytes": sum(len(d) for d in files.values()), "load_s": load_s}

    # -- GPU: vLLM's native NCCL weight transfer (untested here, see cpe.weight_sync.nccl) ----
    def init_weight_transfer(self, **init_info: Any) -> None:
        from cpe.weight_sync import nccl as nccl_sync

        nccl_sync.engine_init(self._alive(), **init_info)

    def receive_weights(self, metas: list[tuple[str, str, list[int]]], version: int) -> None:
        from cpe.weight_sync import nccl as nccl_sync

        try:
            nccl_sync.engine_receive(self._alive(), metas)
        except BaseException as exc:
            self._broken = f"NCCL weight update failed: {exc}"
            raise
        self._broken = None
        va.reset_prefix_cache(self._llm)
        self.weight_version = version

    # -- lifecycle --------------------------------------------------------------
    def health(self) -> dict:
        return {
            "alive": self._llm is not None,
            "pid": os.getpid(),
            "model_path": self.settings.model_path,
            "device": self.settings.device,
            "weight_version": self.weight_version,
            "updating": self._updating,
            "broken": self._broken,
            "startup_s": round(self.startup_s, 3),
        }

    def shutdown(self) -> None:
        if self._adapter_root is not None:
            shutil.rmtree(self._adapter_root, ignore_errors=True)
        llm, self._llm = self._llm, None
        if llm is not None:
            va.shutdown_llm(llm)
            del llm

    # -- helpers ----------------------------------------------------------------
    def _alive(self) -> Any:
        if self._llm is None:
            raise RuntimeError("engine was shut down")
        return self._llm

    def _ready(self) -> Any:
        if self._updating:
            raise RuntimeError("weight update in progress: call finish_weight_update first")
        if self._broken:
            raise RuntimeError(f"{self._broken}; push a complete set of weights first")
        return self._alive()

    def _abandon_update(self) -> None:
        # Unwrap vLLM's buffering loaders; layers that were half loaded hold garbage,
        # so the engine refuses to generate until a complete update succeeds.
        self._updating = False
        self._broken = "a weight bucket failed to load"
        try:
            va.worker_rpc(self._llm, "cpe_finish_weight_update", strict=False)
        except Exception:
            pass
