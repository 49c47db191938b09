"""Typed configuration: dataclasses behind the Hydra YAML tree in ``conf/``.

Hydra checks types and key names when it composes; :func:`validate` checks the
combinations once at start-up, before any actor or engine starts, and names the key
a user has to change. Nothing here rewrites a user's setting.
"""

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

MISSING_PATH = "???"
#: Config nodes of the other tools (cpe.label, cpe.sft, cpe.compare), which training never
#: reads; their default output folders carry a ${now:...} stamp, so they differ between
#: any two starts.
OTHER_TOOLS_NODES = ("label.", "sft.", "compare.")


@dataclass
class ModelSpec:
    # An HF model folder, or a fixture built on demand: "fixture:tiny", "fixture:smollm2".
    path: str = MISSING_PATH
    dtype: str = "float32"  # float32 | bfloat16
    # The memory planner's shape of this model when its folder (config.json) is not on
    # the planning machine: a name of cpe.cluster.memory.ARCHS, e.g. qwen2.5-7b.
    arch: str | None = None


@dataclass
class ReferenceSpec:
    # A frozen reference policy for a KL term (algorithm.kl.coef > 0); null = none.
    path: str | None = None
    dtype: str = "float32"


@dataclass
class ModelConfig:
    policy: ModelSpec = field(default_factory=ModelSpec)
    grm: ModelSpec = field(default_factory=ModelSpec)
    # The value model is initialised from the policy's checkpoint (spec step 7).
    value: ModelSpec = field(default_factory=ModelSpec)
    reference: ReferenceSpec = field(default_factory=ReferenceSpec)
    # Where fixture:NAME models are built, on each node that loads one (~ = that node's
    # home; a relative path is taken from where the run starts).
    cache_dir: str = "~/.cache/cpe/models"


@dataclass
class DataConfig:
    # A JSONL / Parquet file, a saved HF datasets folder, or "bundled:train" / "bundled:eval".
    # No default here: the `data` group file supplies it (bundled: "bundled:train"), and a
    # group that leaves it at ??? must stop start-up instead of inheriting a default.
    train_path: str = MISSING_PATH
    personas_path: str | None = None
    format: str | None = None  # jsonl | parquet | hf; None = by suffix
    max_train_records: int | None = None
    seed: int = 0


@dataclass
class RolloutConfig:
    n: int = 4
    temperature: float = 0.9
    top_p: float = 0.9
    max_new_tokens: int = 2048
    max_prompt_tokens: int = 2048
    edit_max_new_tokens: int = 2048
    gpu_memory_utilization: float = 0.85
    kv_cache_gib: int = 1  # CPU engines only
    enforce_eager: bool = True
    seed: int = 0
    # Sampling temperature of evaluation answers (the paper: 0.8); 0 = greedy.
    eval_temperature: float = 0.8


@dataclass
class OpenAIBackendConfig:
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "grm"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout_s: float = 120.0
    # Transport retries inside the openai client (408/409/429/5xx, timeouts, resets;
    # honours Retry-After). grm.retries only re-asks outputs that did not parse.
    max_retries: int = 2


@dataclass
class GRMConfig:
    backend: str = "vllm"  # vllm | openai | python | bt (a Bradley-Terry reward model, ppo only)
    # two_call: critique at critique_temperature, then a separate score call at
    # score_temperature (the spec); single_call: one output gives both.
    mode: str = "two_call"
    weights: list[float] = field(default_factory=lambda: [0.35, 0.40, 0.25])
    critique_temperature: float = 0.9
    score_temperature: float = 0.0
    max_new_tokens: int = 1024
    max_prompt_tokens: int = 4096  # rubric + persona + question + answer (answer truncated)
    # Re-asks of outputs that did not parse (transport errors are the backend's own).
    retries: int = 2
    backoff_s: float = 0.5
    # A score outside [-5, 5] makes the output invalid; True clamps it instead (for GRMs
    # known to overshoot).
    clamp_scores: bool = False
    # A step whose share of invalid GRM results (grm/invalid_rate) exceeds this stops the
    # run before its update: rewards that are mostly missing are noise, not a signal.
    max_invalid_share: float = 0.5
    guided_decoding: bool = True
    openai: OpenAIBackendConfig = field(default_factory=OpenAIBackendConfig)
    python_function: str | None = None  # "package.module:function"


@dataclass
class KLConfig:
    coef: float = 0.0
    kind: str = "k3"  # k1 | k2 | k3
    in_reward: bool = False  # True: subtract from the reward; False: add to the loss


@dataclass
class AlgorithmConfig:
    mode: str = "cpe"  # cpe | ppo  (cpe.trainer.makers.MAKERS)
    advantage: str = "gae"  # cpe.algo.ADVANTAGE_ESTIMATORS
    policy_loss: str = "hybrid"  # cpe.algo.POLICY_LOSSES; ppo mode may use "ppo"
    gamma: float = 1.0
    lam: float = 1.0
    whiten_advantages: bool = True
    selection: str = "random"  # cpe.algo.SELECTION_STRATEGIES
    edit_ratio: float = 0.5
    clip_low: float = 0.2
    clip_high: float = 0.2
    edit_ratio_cap: float | None = None
    value_clip: float = 0.5
    entropy_coef: float = 0.0
    kl: KLConfig = field(default_factory=KLConfig)


@dataclass
class LoraConfig:
    """LoRA adapters on the policy (the value model trains in full). The engines get the
    merged weights, so rollouts sample exactly the trained policy."""

    rank: int = 0  # 0 = full fine-tuning
    alpha: float = 16.0
    target_modules: list[str] = field(
        default_factory=lambda: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ]
    )


@dataclass
class LearnerConfig:
    zero_stage: int = 2
    # ZeRO reduce/all-gather bucket size in elements (DeepSpeed's default 5e8 is 2 GB of
    # fp32 buffers per rank: fine on a GPU node, too much for a 24 GiB CPU box).
    zero_bucket_elements: int = 500_000_000
    actor_lr: float = 1e-6
    critic_lr: float = 1e-5
    weight_decay: float = 0.01
    lr_schedule: str = "constant"  # constant | cosine
    warmup_steps: int = 0
    mini_batch_prompts: int = 64
    micro_batch_size: int = 4
    # > 0: micro-batches of consecutive rows up to this many padded tokens (rows x the
    # longest row) instead of micro_batch_size rows: short rows go many to a pass, long
    # ones few (cpe.learner.micro). 0 = micro_batch_size rows.
    micro_batch_tokens: int = 0
    # Positions of the policy's fp32 log-softmax computed at a time (each recomputed in
    # backward): no fp32 copy of the whole [rows, positions, vocab] logits; 0 = all at once.
    logprob_chunk: int = 0
    # transformers attention: sdpa | eager | flash_attention_2 (needs the flash-attn package
    # on the learner nodes; GPU only).
    attn_implementation: str = "sdpa"
    ppo_epochs: int = 1
    grad_clip: float = 1.0
    gradient_checkpointing: bool = False
    # Each distinct prompt of a micro-batch runs once through policy and value model; its
    # n answers read its key/value cache (cpe.learner.prefix). Needs gradient_checkpointing off.
    shared_prefix: bool = True
    torch_adam: bool = True
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class TrainerConfig:
    rollout_batch_prompts: int = 128
    total_steps: int | None = None  # None = run `epochs` over the training set
    epochs: int = 2
    save_every: int = 10
    keep_checkpoints: int = 2
    resume: str = "auto"  # auto | never | a checkpoint folder
    sync_check_tokens: int = 8
    seed: int = 0
    # > 1: cut each step's prompts into this many chunks that go through generate ->
    # critique -> edit -> score on their own, so the rollout and GRM pools work at the
    # same time (cpe mode; cpe.trainer.pipeline). Same samples as 1, other timing.
    pipeline_chunks: int = 1
    # Every k steps, run the eval set through the current policy and the judge (vs the
    # initial policy's answers, generated before step 1); 0 = never.
    eval_every: int = 0


@dataclass
class EnginePoolConfig:
    # `engines` vLLM engines with `devices_per_engine` each: GPUs (tensor parallel) on
    # GPU, CPUs on CPU, where they are also the engine's threads (cpe.cluster.threads).
    engines: int = 1
    devices_per_engine: int = 1


@dataclass
class RankPoolConfig:
    # `ranks` DeepSpeed ranks with `devices_per_rank` each (on CPU: CPUs = torch threads).
    ranks: int = 1
    devices_per_rank: int = 1


@dataclass
class PoolsConfig:
    rollout: EnginePoolConfig = field(default_factory=EnginePoolConfig)
    grm: EnginePoolConfig = field(default_factory=EnginePoolConfig)
    policy: RankPoolConfig = field(default_factory=RankPoolConfig)
    value: RankPoolConfig = field(default_factory=RankPoolConfig)
    reference: RankPoolConfig = field(default_factory=lambda: RankPoolConfig(ranks=0))


@dataclass
class ClusterConfig:
    device: str = "cpu"  # cpu | gpu
    address: str | None = None  # None = start a local Ray; "auto" = join a running one
    num_nodes: int = 1
    devices_per_node: int = 8  # GPUs per node (gpu) or CPU bundles per node (cpu)
    gpu_memory_gib: float = 80.0  # per GPU: what the memory planner fits pools into (gpu)
    # CPUs each GPU's bundle reserves: the host threads of the rank or engine on it (gpu).
    cpus_per_gpu: int = 1
    object_store_mb: int | None = None
    # How new policy weights reach the rollout engines (cpe.weight_sync.backends.WEIGHT_SYNC_BACKENDS):
    # object_store (any device; the CPU path) | nccl (GPU: broadcast from learner rank 0)
    # | adapter (learner.lora.rank > 0: only the adapter moves; vLLM serves it as a LoRA).
    weight_sync: str = "object_store"
    # nccl: how long a weight push waits for its peers before it stops the run with an
    # error naming this key (a peer that never joins the broadcast would hang it).
    sync_timeout_s: float = 900.0
    # A rollout or GRM engine (or BT scorer) whose process dies is rebuilt on its
    # bundle, given the current weights, and the failed call issued again: at most this
    # many times per actor and call (0: a dead one stops the run). cpe.cluster.slots.
    engine_restarts: int = 2
    # true: each pool's bundles also ask for the custom resource cpe_pool_<pool>, so a
    # pool lands only on nodes started with it (KubeRay: its own worker group, see
    # cpe.launch.k8s); false: Ray places pools wherever they fit.
    pin_pools: bool = False
    pools: PoolsConfig = field(default_factory=PoolsConfig)


@dataclass
class LoggingConfig:
    # With a ${now:...} stamp (or as a sweep point) a new run gets a folder of its own;
    # a fixed folder is continued (cpe.trainer.run_folder).
    run_dir: str = "runs/${now:%Y%m%d-%H%M%S}"
    wandb_mode: str = "offline"  # offline | online | disabled
    wandb_project: str = "cpe"
    wandb_entity: str | None = None
    wandb_group: str | None = None  # None: the preset's name; a sweep's points: the sweep
    sample_rows: int = 8
    progress: bool = True


@dataclass
class JudgeConfig:
    # cpe.eval.judges.JUDGE_BACKENDS: vllm (engines in the GRM pool, cluster.pools.grm)
    # | openai (any OpenAI-compatible endpoint, the grm.openai-style node below).
    backend: str = "vllm"
    # The eval group file points these at the GRM's (model.grm.*) and its prompt budget.
    model: str = MISSING_PATH
    dtype: str = "float32"
    openai: OpenAIBackendConfig = field(default_factory=lambda: OpenAIBackendConfig(model="judge"))
    # vLLM judge: template + profile + question + both answers (answers are cut to fit;
    # a pair that still does not fit is an invalid verdict).
    max_prompt_tokens: int = 4096
    # OpenAI judge: re-asks of replies that name neither A nor B; then invalid. (The vLLM
    # judge reads a greedy token's probabilities: asking again would give the same.)
    retries: int = 2
    # Judge each pair in both orders, cancelling position bias.
    both_orders: bool = True


@dataclass
class EvalConfig:
    # cpe.eval.runner.EVAL_TASKS: pairwise (policies vs a reference, judged) |
    # preference_judge / preference_grm (PersonaFeedback: chosen vs rejected accuracy) |
    # multiple_choice (PersonaMem: accuracy of each policy's answer letters).
    task: str = "pairwise"
    # cpe.eval.sets.EVAL_SETS: records (JSONL/parquet/HF/"bundled:eval") | persona_feedback
    # (the published folder layout) | alpaca_eval (a JSON array); null = by path.
    data_path: str = "bundled:eval"
    personas_path: str | None = None
    set: str | None = None
    max_records: int | None = None
    # Policies to evaluate: "PATH" or "NAME=PATH"; PATH is an HF folder, a checkpoint
    # folder, a run folder (its newest checkpoint) or fixture:NAME.
    policies: list[str] = field(default_factory=list)
    # What answers are judged against: "initial" (this config's model.policy.path, the
    # starting policy), a policy PATH, "dataset" (the eval set's reference answers) or an
    # outputs file in AlpacaEval format (matched to the eval set by instruction).
    reference: str = "initial"
    # Where answers, judgments and results go (re-use it to continue or extend an eval);
    # null: <run>/eval/<eval set> when the first policy is a run folder, else
    # runs/eval-<eval set>-<time>.
    output_dir: str | None = None
    lc_method: str = "alpaca_eval"  # cpe.algo.LC_METHODS
    # Controllability probe: also answer with "answer briefly"/"in detail" suffixes.
    probe: bool = False
    # Also score every policy answer with the GRM (the `grm` node) and report its three
    # dimensions and reward.
    grm_scores: bool = False
    judge: JudgeConfig = field(default_factory=JudgeConfig)


@dataclass
class LabelConfig:
    """``python -m cpe.label``: the teacher (the ``grm`` node and ``model.grm``) critiques
    and scores both answers of each preference pair with the GRM rubric."""

    # Records with chosen and rejected answers (JSONL / parquet / HF folder, or a
    # PersonaFeedback folder); with sample_answers any records (e.g. bundled:train).
    # Required by cpe.label (checked there; other tools leave it unset).
    pairs_path: str | None = None
    personas_path: str | None = None
    # true: each pair is two answers sampled from model.policy.path on a rollout engine
    # (rollout.temperature / top_p / max_new_tokens, seeded by rollout.seed), kept in
    # <output_dir>/answers.jsonl for re-runs; needs preference=teacher.
    sample_answers: bool = False
    # cpe.label.pairs.PREFERENCES: dataset (keep each pair's chosen/rejected) | teacher
    # (the answer the teacher rewards higher is chosen; equal rewards drop the pair).
    preference: str = "dataset"
    # preference=dataset: drop pairs whose rejected answer the teacher rewards above the chosen.
    consistency_filter: bool = False
    max_pairs: int | None = None
    # Share of pairs held out for the *_eval.jsonl files (by a hash of the pair's id, so
    # the split is the same on every re-run).
    eval_share: float = 0.1
    # Answers handed to the teacher backend in one call: its batch (memory; with
    # grm=openai, also a bound on the requests in flight next to grm.openai.concurrency).
    # Durability does not depend on it: each result is appended as it arrives.
    chunk: int = 16
    # labels.jsonl (every teacher output, appended and fsynced as its reply arrives, so a
    # kill repeats only unanswered requests), then grm_sft[_eval].jsonl, pairs[_eval].jsonl
    # and summary.json (cpe.label.outputs). A fixed folder is continued: answers already
    # in its labels.jsonl are not asked again (invalid ones neither; transport failures
    # are never stored, so they are), and a folder labelled with other settings
    # (label_settings.json) is refused.
    output_dir: str = "runs/label-${now:%Y%m%d-%H%M%S}"


@dataclass
class SFTConfig:
    """``python -m cpe.sft``: supervised training on the policy pool's DeepSpeed ranks
    (``cluster.pools.policy``, ``learner.*`` for ZeRO, micro-batches, schedule, LoRA)."""

    # cpe.sft.tasks.SFT_TASKS: grm (a GRM on cpe.label's grm_sft.jsonl) | policy (the
    # policy on the chosen answers of preference pairs) | bt (a Bradley-Terry reward
    # model on preference pairs: a scalar head, -log sigmoid(r_chosen - r_rejected)).
    task: str = "grm"
    # The starting model (an HF folder or fixture:NAME) and the training examples:
    # required by cpe.sft (checked there; other tools leave them unset).
    model: str | None = None
    dtype: str = "float32"
    train_path: str | None = None
    # null: eval_share of train_path held out (by a hash of each example's id).
    eval_path: str | None = None
    personas_path: str | None = None
    eval_share: float = 0.1
    epochs: int = 1
    lr: float = 1.0e-5
    # Examples (pairs for bt) per optimizer update, over all ranks.
    batch_examples: int = 16
    # Prompt + response tokens of an example; a longer one is skipped and counted.
    max_len: int = 1024
    # Held-out loss every k updates (and after the last); 0 = only after the last.
    eval_every: int = 0
    save_every: int = 50
    keep_checkpoints: int = 2
    resume: str = "auto"  # auto | never | a checkpoint folder
    seed: int = 0
    # The HF model goes to <output_dir>/model; a fixed folder is continued.
    output_dir: str = "runs/sft-${now:%Y%m%d-%H%M%S}"


@dataclass
class CompareConfig:
    """``python -m cpe.compare``: the paper's comparison on one data set, seed and budget:
    each run of ``runs`` trained with the same overrides, then evaluated and reported."""

    # cpe.compare.stages.COMPARED_RUNS: ppo-bt (PPO on a Bradley-Terry reward model) |
    # ppo-grm (PPO on the GRM's reward) | cpe (Critique-Post-Edit).
    runs: list[str] = field(default_factory=lambda: ["ppo-bt", "ppo-grm", "cpe"])
    # Preference pairs for the Bradley-Terry model (records with chosen and rejected);
    # null: sample_pairs records of data.train_path, each with two answers sampled from
    # model.policy.path and ordered by the GRM (python -m cpe.label).
    pairs_path: str | None = None
    sample_pairs: int = 64
    # Every stage writes below it; a fixed folder is continued stage by stage.
    output_dir: str = "runs/compare-${now:%Y%m%d-%H%M%S}"


@dataclass
class PromptOverrides:
    # A template file per role; None keeps the prompt set's own.
    policy_system: str | None = None
    policy_user: str | None = None
    grm: str | None = None
    edit: str | None = None
    judge: str | None = None
    choice: str | None = None
    brief_suffix: str | None = None
    detailed_suffix: str | None = None


@dataclass
class PromptsConfig:
    # A prompt set by name ("default") or a folder; single templates may be overridden
    # by a file path (prompts.overrides.grm=/my/rubric.jinja).
    set: str = "default"
    overrides: PromptOverrides = field(default_factory=PromptOverrides)


@dataclass
class CPEConfig:
    name: str = "cpe"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    grm: GRMConfig = field(default_factory=GRMConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)


def register_configs() -> None:
    ConfigStore.instance().store(name="cpe_schema", node=CPEConfig)


register_configs()
