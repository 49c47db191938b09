"""One DeepSpeed learner rank: engine set-up, gradient accumulation, export, checkpoints.

A plain class; the caller wraps it with ``ray.remote``. DeepSpeed and transformers
are imported inside methods so a driver that only references the class stays light.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from cpe.batch import TensorBatch
from cpe.cluster.threads import bundle_threads
from cpe.config import AlgorithmConfig, LearnerConfig
from cpe.learner.dist import backend_for, init_distributed
from cpe.learner.ds_config import build_ds_config, lr_scheduler_factory, uses_bf16
from cpe.learner.metrics import MetricAccumulator
from cpe.learner.micro import row_bounds, split_to, token_bounds
from cpe.learner.prefix import Output, plain_forward, shared_prefix_forward
from cpe.logs import quiet_third_party
from cpe.models.paths import DEFAULT_CACHE, resolve_model_path
from cpe.weight_sync.sender import WeightSender

CHECKPOINT_TAG = "state"
CLIENT_KEY = "cpe_client_state"
# (loss, metrics, token weights by group) for one micro-batch.
LossFn = Callable[[TensorBatch], tuple[torch.Tensor, dict[str, float], dict[str, float]]]


def load_model_config(model_path: str):
    """The HF config with every dropout probability set to 0.

    RL needs π_θ in the loss to be the same function as the one that scored the
    behaviour log-probs; with no dropout, train mode (needed for gradient
    checkpointing) and eval mode compute the same thing.
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path)
    for key, value in vars(config).items():
        if "dropout" in key and isinstance(value, float):
            setattr(config, key, 0.0)
    return config


class DeepSpeedWorker(WeightSender):
    role = "actor"

    def __init__(
        self,
        rank: int,
        world_size: int,
        master_addr: str,
        master_port: int,
        model_path: str,
        learner_cfg: LearnerConfig,
        algo_cfg: AlgorithmConfig,
        device: str = "cpu",
        dtype: str = "float32",
        total_optimizer_steps: int | None = None,
        ds_overrides: dict | None = None,
        model_cache_dir: str = DEFAULT_CACHE,
    ) -> None:
        """``model_path``: a folder every node has, or fixture:NAME, built on this node."""
        quiet_third_party(device)
        torch.set_num_threads(bundle_threads())
        self.rank, self.world_size = rank, world_size
        self.model_path = resolve_model_path(str(model_path), model_cache_dir)
        self.cfg, self.algo = learner_cfg, algo_cfg
        init_distributed(rank, world_size, master_addr, master_port, backend_for(device))
        torch_dtype = torch.bfloat16 if uses_bf16(device, dtype) else torch.float32
        module = self.build_module(load_model_config(self.model_path), torch_dtype)
        if learner_cfg.gradient_checkpointing:
            self.enable_gradient_checkpointing(module)
        self.engine = self._initialize(module, device, dtype, total_optimizer_steps, ds_overrides)
        self.engine.train()

    # -- subclass hooks -------------------------------------------------------------

    def build_module(self, config, torch_dtype: torch.dtype) -> torch.nn.Module:
        raise NotImplementedError

    def enable_gradient_checkpointing(self, module: torch.nn.Module) -> None:
        # Non-reentrant checkpointing works with ZeRO-3's parameter hooks.
        module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    # -- set-up ---------------------------------------------------------------------

    def _initialize(self, module, device, dtype, total_steps, overrides):
        import deepspeed

        config = build_ds_config(
            self.cfg, self.role, device, dtype, world_size=self.world_size, overrides=overrides
        )
        engine, *_ = deepspeed.initialize(
            model=module,
            model_parameters=[p for p in module.parameters() if p.requires_grad],
            config=config,
            lr_scheduler=lr_scheduler_factory(self.cfg, total_steps),
        )
        return engine

    @property
    def zero_stage(self) -> int:
        return int(self.engine.zero_optimization_stage())

    # -- training -------------------------------------------------------------------

    def _run_training(
        self,
        batch: TensorBatch,
        loss_fn: LossFn,
        num_mini_batches: int,
        micro_batch_size: int | None,
    ) -> dict[str, float]:
        """``ppo_epochs`` × mini-batches (one optimizer step each) of this rank's shard."""
        shard = batch.shard(self.rank, self.world_size).to(self.engine.device)
        acc = MetricAccumulator()
        for _ in range(self.cfg.ppo_epochs):
            for mini in shard.split(num_mini_batches):
                self._optimizer_step(self._micro_batches(mini, micro_batch_size), loss_fn, acc)
        return acc.result(passes=self.cfg.ppo_epochs, all_reduce=self._all_reduce_sum)

    def _micro_batches(self, batch: TensorBatch, rows: int | None = None) -> list[TensorBatch]:
        """``batch`` cut into trimmed micro-batches (cpe.learner.micro): ``rows`` rows
        each when given, else ``learner.micro_batch_tokens`` padded tokens at most when
        set (a count every rank agrees on), else ``learner.micro_batch_size`` rows."""
        budget = self.cfg.micro_batch_tokens
        if rows is not None or not budget:
            bounds = row_bounds(len(batch), rows or self.cfg.micro_batch_size)
        else:
            lengths = batch.row_lengths()
            bounds = token_bounds(lengths, budget)
            bounds = split_to(bounds, lengths, self._max_over_ranks(len(bounds)))
        return [batch.rows(a, b).trimmed() for a, b in bounds]

    def _max_over_ranks(self, value: int) -> int:
        import torch.distributed as tdist

        count = torch.tensor([value], dtype=torch.long)
        self._all_reduce(count, tdist.ReduceOp.MAX)
        return int(count)

    def _sum_over_ranks(self, value: float) -> float:
        import torch.distributed as tdist

        total = torch.tensor([value], dtype=torch.float64)
        self._all_reduce(total, tdist.ReduceOp.SUM)
        return float(total)

    def _all_reduce(self, tensor: torch.Tensor, op) -> None:
        """In place over the ranks, through the engine's device: NCCL reduces CUDA
        tensors only, gloo CPU ones."""
        if self.world_size == 1:
            return
        import torch.distributed as tdist

        on_device = tensor.to(self.engine.device)
        tdist.all_reduce(on_device, op=op)
        tensor.copy_(on_device.to(tensor.device))

    def _optimizer_step(
        self, micro_batches: list[TensorBatch], loss_fn: LossFn, acc: MetricAccumulator
    ) -> None:
        """Accumulate gradients over a variable number of micro-batches, then step once.

        The boundary is set by hand (DeepSpeed's own counter assumes a fixed count) and
        each micro-batch's token-mean loss is weighted by its share of the valid tokens
        of ALL ranks, times the world size (DeepSpeed averages gradients over ranks): the
        step follows the token mean over the whole mini-batch however it was cut into
        micro-batches and shards, even when shards hold different token counts or only
        padding. Every rank must pass the same count: ZeRO-2/3 reduce gradients
        collectively in each backward.
        """
        count = len(micro_batches)
        tokens = [float(m.response_mask.sum()) for m in micro_batches]
        total = self._sum_over_ranks(sum(tokens))
        for i, micro in enumerate(micro_batches):
            self.engine.set_gradient_accumulation_boundary(i == count - 1)
            loss, metrics, weights = loss_fn(micro)
            share = tokens[i] * self.world_size / total if total else 1.0 / count
            self.engine.backward(loss * share, scale_wrt_gas=False)
            acc.add(metrics, weights)
        # Stage 0 keeps no norm; its gradients are already all-reduced at the boundary.
        local_norm = self._grad_norm() if self.zero_stage == 0 else None
        lr = float(self.engine.get_lr()[0])
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        acc.add({"grad_norm": float(local_norm if norm is None else norm), "lr": lr})

    def _grad_norm(self) -> float:
        grads = [p.grad for p in self.engine.module.parameters() if p.grad is not None]
        return float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0

    def _all_reduce_sum(self, tensor: torch.Tensor) -> None:
        import torch.distributed as tdist

        self._all_reduce(tensor, tdist.ReduceOp.SUM)

    # -- inference ------------------------------------------------------------------

    def _forward(self, batch: TensorBatch, output: Output) -> torch.Tensor:
        """``output`` from the position before the first response token on, each
        distinct prompt run once when ``learner.shared_prefix`` (cpe.learner.prefix)."""
        forward = shared_prefix_forward if self.cfg.shared_prefix else plain_forward
        return forward(self.engine, batch, output)

    @torch.no_grad()
    def _map_shard(
        self, batch: TensorBatch, fn: Callable[[TensorBatch], torch.Tensor]
    ) -> torch.Tensor:
        """``fn`` over this rank's shard in micro-batches (each without its padding-only
        columns); rows in shard order, ``[b_shard, L]``, on CPU."""
        shard = batch.shard(self.rank, self.world_size).to(self.engine.device)
        length = shard.input_ids.shape[1]
        outs = []
        for micro in self._micro_batches(shard):
            out = fn(micro).float().cpu()
            outs.append(torch.nn.functional.pad(out, (0, length - out.shape[1])))
        return torch.cat(outs)

    # -- export ---------------------------------------------------------------------

    def _named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        # named_parameters() lists a tied weight once (under its first name), as HF saves it.
        return list(self.engine.module.named_parameters())

    def num_params(self) -> int:
        return sum(getattr(p, "ds_numel", p.numel()) for _, p in self._named_parameters())

    def local_param_numel(self) -> int:
        """Elements of the module's parameters materialised on this rank (under ZeRO-3,
        far below :meth:`num_params` when partitioned)."""
        return sum(p.numel() for _, p in self._named_parameters())

    # -- checkpoints ----------------------------------------------------------------

    def save_state(self, directory: str, client_state: dict | None = None) -> str:
        """Full training state (weights, optimizer, lr schedule); every rank calls it."""
        self.engine.save_checkpoint(
            directory, tag=CHECKPOINT_TAG, client_state={CLIENT_KEY: client_state or {}}
        )
        return directory

    def load_state(self, directory: str) -> dict:
        """Restore :meth:`save_state`; returns the saved ``client_state``."""
        path, saved = self.engine.load_checkpoint(
            directory, tag=CHECKPOINT_TAG, load_optimizer_states=True, load_lr_scheduler_states=True
        )
        if path is None:
            raise FileNotFoundError(f"no learner state under {directory!r}")
        # DeepSpeed hands back the whole checkpoint dict; ours is one key of it.
        return (saved or {}).get(CLIENT_KEY, {})

    # -- misc -----------------------------------------------------------------------

    def ping(self) -> int:
        return self.rank

    def pid(self) -> int:
        return os.getpid()

    def shutdown(self) -> None:
        import torch.distributed as tdist

        if tdist.is_initialized():
            tdist.destroy_process_group()


def checkpoint_exists(directory: str | Path) -> bool:
    return (Path(directory) / CHECKPOINT_TAG).is_dir()
