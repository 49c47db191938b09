"""Per-GPU memory of each pool, estimated from the model shapes and the config, so that
a layout that cannot fit stops at start-up (``cpe.trainer.preflight``) and a person can
size a cluster (``python -m cpe.tools.plan``). Pure arithmetic: no torch, no Ray.

Learner ranks (DeepSpeed, bf16 weights with fp32 Adam master, m and v):
  weights 2 B/param, gradients 2 B/trainable param, optimizer 12 B/trainable param; ZeRO
  stage >= 1 shards the optimizer state over the pool's ranks, >= 2 the gradients too,
  3 the weights too. Activations of one micro-batch (SDPA/flash attention, so no
  seq^2 term): per layer ``2 * b * S * (8h + 3i)`` bytes, all layers kept without
  gradient checkpointing, one layer plus each layer's input with it. The policy's bf16
  logits on the response positions, plus their fp32 copy and log-softmax on all of them
  or on ``learner.logprob_chunk`` positions at a time; the value model's are negligible. A fixed allowance for the CUDA context and NCCL buffers.
Engines (vLLM): the engine takes ``rollout.gpu_memory_utilization`` of each GPU; its
  weights (sharded over tensor parallelism) and a fixed allowance must leave room for
  the KV cache of at least one sequence of the engine's longest length.
BT scorers (grm.backend=bt): weights, one layer's forward activations, runtime.
These are estimates for sizing, not measurements. Left out: ZeRO-3's prefetch and live
parameter buffers and its fp32 gradient sub-groups during the step, the reduce bucket
(``learner.zero_bucket_elements``), the logits' gradient, and attention's seq^2 term with
``attn_implementation=eager``: a few GiB on a 7-14B model, which a pool that is only
just within its budget should keep free.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
RUNTIME_GIB = 3.0  # CUDA context, NCCL/communication buffers, allocator slack


@dataclass(frozen=True)
class Shape:
    """What the planner needs of a decoder-only transformer (HF ``config.json`` keys)."""

    layers: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tied: bool = False
    qkv_bias: bool = True  # Qwen2 has q/k/v biases; Llama does not

    @classmethod
    def from_hf_config(cls, config: dict) -> Shape:
        return cls(
            layers=config["num_hidden_layers"],
            hidden=config["hidden_size"],
            intermediate=config["intermediate_size"],
            vocab=config["vocab_size"],
            heads=config["num_attention_heads"],
            kv_heads=config.get("num_key_value_heads") or config["num_attention_heads"],
            tied=bool(config.get("tie_word_embeddings", False)),
            qkv_bias=config.get("model_type") == "qwen2",
        )

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    def layer_params(self) -> int:
        h, kv = self.hidden, self.kv_dim
        attention = 2 * h * h + 2 * h * kv + ((h + 2 * kv) if self.qkv_bias else 0)
        return attention + 3 * h * self.intermediate + 2 * h  # + MLP, two norms

    def params(self, lm_head: bool = True) -> int:
        """Every parameter; ``lm_head=False`` for a value model's backbone."""
        embed = self.vocab * self.hidden
        head = embed if lm_head and not self.tied else 0
        return embed + self.layers * self.layer_params() + self.hidden + head

    def kv_bytes_per_token(self, dtype_bytes: int = 2) -> int:
        return 2 * self.layers * self.kv_dim * dtype_bytes


# Shapes of the models the presets name (their config.json), for planning on a machine
# that does not hold the folders: model.<role>.arch picks one.
ARCHS: dict[str, Shape] = {
    "qwen2.5-7b": Shape(28, 3584, 18944, 152064, 28, 4),
    "qwen2.5-14b": Shape(48, 5120, 13824, 152064, 40, 8),
    "smollm2-135m": Shape(30, 576, 1536, 49152, 9, 3, tied=True, qkv_bias=False),
}


@dataclass(frozen=True)
class Need:
    """One pool's estimated need per GPU, in GiB, by part."""

    pool: str
    gpus: int
    parts: dict[str, float]
    budget_gib: float  # what one GPU offers this pool

    @property
    def total_gib(self) -> float:
        return sum(self.parts.values())

    @property
    def shortfall_gib(self) -> float:
        return max(0.0, self.total_gib - self.budget_gib)


def learner_need(
    pool: str,
    shape: Shape,
    ranks: int,
    zero_stage: int,
    micro_batch: int,
    seq_len: int,
    response_len: int,
    checkpointing: bool,
    gpu_gib: float,
    trainable: int | None = None,
    logprob_chunk: int = 0,
) -> Need:
    """Per-GPU need of a policy (``pool="policy"``/``"reference"``) or value pool."""
    logits = pool != "value"
    params = shape.params(lm_head=logits) + (0 if logits else shape.hidden + 1)
    trainable = params if trainable is None else trainable
    frozen = pool == "reference"
    shard = {s: ranks if zero_stage >= s else 1 for s in (1, 2, 3)}
    b, h, i = micro_batch, shape.hidden, shape.intermediate
    layer_acts = 2 * b * seq_len * (8 * h + 3 * i)
    fp32_positions = min(logprob_chunk, response_len) if logprob_chunk else response_len
    acts = (
        shape.layers * 2 * b * seq_len * h + layer_acts
        if checkpointing
        else shape.layers * layer_acts
    )
    parts = {
        "weights": 2 * params / shard[3],
        "grads": 0 if frozen else 2 * trainable / shard[2],
        "optimizer": 0 if frozen else 12 * trainable / shard[1],
        "activations": 0 if frozen else acts,
        "logits": b * shape.vocab * (2 * response_len + 8 * fp32_positions) if logits else 0,
    }
    gib = {k: v / GIB for k, v in parts.items()}
    return Need(pool, ranks, {**gib, "runtime": RUNTIME_GIB}, gpu_gib)


def engine_need(
    pool: str, shape: Shape, engines: int, tp: int, max_len: int, gpu_gib: float, util: float
) -> Need:
    """Per-GPU need of a vLLM pool: weights, one longest sequence's KV cache, runtime;
    the budget is the share of the GPU vLLM is told to take."""
    parts = {
        "weights": 2 * shape.params() / tp / GIB,
        "kv_one_sequence": shape.kv_bytes_per_token() * max_len / tp / GIB,
        "runtime": RUNTIME_GIB,
    }
    return Need(pool, engines * tp, parts, gpu_gib * util)


def scorer_need(
    pool: str,
    shape: Shape,
    slots: int,
    micro_batch: int,
    seq_len: int,
    gpu_gib: float,
    dtype_bytes: int = 2,
) -> Need:
    """Per-GPU need of a forward-only scorer (a Bradley-Terry reward model, no LM head):
    its weights, one layer's activations of a micro-batch (no_grad frees each layer's
    as the next runs), runtime; the whole GPU is its budget."""
    b, h, i = micro_batch, shape.hidden, shape.intermediate
    parts = {
        "weights": dtype_bytes * shape.params(lm_head=False) / GIB,
        "activations": 2 * b * seq_len * (8 * h + 3 * i) / GIB,
        "runtime": RUNTIME_GIB,
    }
    return Need(pool, slots, parts, gpu_gib)


def kv_capacity_tokens(need: Need, shape: Shape, tp: int) -> int:
    """Tokens of KV cache one engine holds once weights and runtime are paid."""
    free = need.budget_gib - need.parts["weights"] - need.parts["runtime"]
    return max(0, int(free * GIB / (shape.kv_bytes_per_token() / tp)))


# in -> out features of the linear layers LoRA may adapt (learner.lora.target_modules)
def _linear_dims(shape: Shape) -> dict[str, tuple[int, int]]:
    h, kv, i = shape.hidden, shape.kv_dim, shape.intermediate
    return {
        "q_proj": (h, h),
        "k_proj": (h, kv),
        "v_proj": (h, kv),
        "o_proj": (h, h),
        "gate_proj": (h, i),
        "up_proj": (h, i),
        "down_proj": (i, h),
    }


def lora_params(shape: Shape, rank: int, targets: list[str]) -> int:
    """Trainable parameters of rank-``rank`` adapters on ``targets`` in every layer."""
    dims = _linear_dims(shape)
    return shape.layers * sum(rank * sum(dims[t]) for t in targets if t in dims)
