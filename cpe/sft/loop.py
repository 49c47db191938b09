"""The supervised training loop: the schedule of updates, the ranks on the policy pool,
held-out evaluation, checkpoints and resume, the final model. The same for every
``sft.task`` (cpe.sft.tasks)."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from cpe.config import CPEConfig
from cpe.learner.group import get_all
from cpe.sft.tasks import SFTTask, TaskData
from cpe.trainer.checkpoint import CheckpointManager, read_driver_state, resolve_resume
from cpe.trainer.metrics import MetricsLogger

MODEL_FOLDER = "model"


@dataclass
class SFTPlan:
    """Everything the cheap start-up checks produced (cpe.sft.plan)."""

    cfg: CPEConfig
    task: SFTTask
    data: TaskData
    pad_id: int


def update_schedule(items: int, per_update: int, epochs: int, seed: int) -> list[list[int]]:
    """The item indices of every optimizer update: each epoch a fresh seeded order cut
    into ``per_update`` items (the last update of an epoch may hold fewer). Fixed by the
    seed, so a resumed run takes up exactly the updates it had not done."""
    out = []
    for epoch in range(epochs):
        order = torch.randperm(items, generator=torch.Generator().manual_seed(seed + epoch))
        out += [order[i : i + per_update].tolist() for i in range(0, items, per_update)]
    return out


def due(done: int, every: int, last: int) -> bool:
    return done == last or (every > 0 and done % every == 0)


class SFTRanks:
    """The task's learner ranks on ``cluster.pools.policy``; a context manager that
    stops them, their placement group and a Ray it started."""

    def __init__(self, cfg: CPEConfig, worker: type, total_updates: int):
        self.cfg, self.worker, self.total_updates = cfg, worker, total_updates
        self.actors: list = []
        self.placement = None
        self.rendezvous = None  # the ranks' store, served here (cpe.learner.dist)
        self.started_ray = False

    def __enter__(self) -> SFTRanks:
        try:
            self._start()
        except BaseException:
            self.__exit__()  # a failed start leaves no actors or placement groups behind
            raise
        return self

    def _start(self) -> None:
        import ray

        from cpe.cluster.placement import Placement
        from cpe.cluster.session import init_ray
        from cpe.learner.dist import RendezvousServer, rendezvous_host
        from cpe.models.paths import cache_dir_for_actors
        from cpe.trainer.system import record_layout

        cfg, s = self.cfg, self.cfg.sft
        self.started_ray = init_ray(cfg)
        self.placement = Placement(cfg.cluster, only=("policy",)).create()
        record_layout(self.placement, s.output_dir)
        world = self.placement.slots("policy")
        self.rendezvous = RendezvousServer(rendezvous_host())
        # sft.lr is this tool's rate; learner.actor_lr / critic_lr are RL's.
        learner = replace(cfg.learner, actor_lr=s.lr, critic_lr=s.lr)
        actor = ray.remote(self.worker)
        self.actors = [
            actor.options(**self.placement.options_for("policy", r)).remote(
                r, world, self.rendezvous.host, self.rendezvous.port, s.model, learner,
                cfg.algorithm,
                device=cfg.cluster.device, dtype=s.dtype,
                total_optimizer_steps=self.total_updates,
                model_cache_dir=cache_dir_for_actors(cfg.model.cache_dir),
            )
            for r in range(world)
        ]  # fmt: skip
        get_all([a.ping.remote() for a in self.actors])

    def __exit__(self, *exc: object) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        if self.rendezvous is not None:
            self.rendezvous.close()
        if self.placement is not None:
            self.placement.remove()
        if self.started_ray:
            ray.shutdown()

    def save_state(self, folder: Path) -> None:
        get_all([a.save_state.remote(str(folder / "state")) for a in self.actors])

    def load_state(self, folder: Path) -> None:
        get_all([a.load_state.remote(str(folder / "state")) for a in self.actors])


def run_sft(plan: SFTPlan) -> Path:
    """Train; returns the folder of the final model (``<sft.output_dir>/model``)."""
    import ray

    cfg, task, data, s = plan.cfg, plan.task, plan.data, plan.cfg.sft
    out = Path(s.output_dir)
    schedule = update_schedule(len(data.train), s.batch_examples, s.epochs, s.seed)
    per_epoch = math.ceil(len(data.train) / s.batch_examples)
    checkpoints = CheckpointManager(out, keep=s.keep_checkpoints)
    resume = resolve_resume(s.resume, checkpoints)
    start = read_driver_state(resume)["update"] if resume else 0
    logger = MetricsLogger(
        out, cfg.logging.wandb_mode, cfg.logging.wandb_project, cfg.logging.wandb_entity,
        config={"sft": vars(s)}, resume_step=start, group=f"sft-{s.task}",
    )  # fmt: skip
    try:
        with SFTRanks(cfg, task.worker, len(schedule)) as ranks:
            evaluate = _evaluator(task, ranks, data, plan.pad_id)
            if resume:
                ranks.load_state(resume)
            elif data.held_out:
                logger.log(0, evaluate())  # the starting model's held-out figures
            bar = tqdm(
                total=len(schedule), initial=start, desc=f"sft {s.task}", unit="update",
                disable=not cfg.logging.progress, file=sys.stderr,
            )  # fmt: skip
            for update in range(start, len(schedule)):
                started = time.perf_counter()
                items = [data.train[i] for i in schedule[update]]
                batch = task.batch(items, plan.pad_id, len(ranks.actors))
                metrics = get_all(task.train_step(ranks.actors, ray.put(batch)))[0]
                row = {f"train/{k}": v for k, v in metrics.items()}
                row |= {
                    "train/epoch": update // per_epoch + 1,
                    f"train/{task.unit}": float(len(items)),
                    "time/update_s": time.perf_counter() - started,
                }
                done = update + 1
                if data.held_out and due(done, s.eval_every, len(schedule)):
                    row |= evaluate()
                logger.log(done, row)
                bar.update(1)
                bar.set_postfix_str(_postfix(row))
                if done < len(schedule) and due(done, s.save_every, len(schedule)):
                    with checkpoints.writing(done, {"update": done}) as tmp:
                        ranks.save_state(tmp)
            bar.close()
            task.save(ranks.actors, out / MODEL_FOLDER, data, plan.pad_id, get_all)
    finally:
        logger.close()
    _write_summary(out, plan, len(schedule))
    return out / MODEL_FOLDER


def _evaluator(task: SFTTask, ranks: SFTRanks, data: TaskData, pad_id: int):
    return lambda: task.evaluate(ranks.actors, data.held_out, pad_id, get_all)


def _postfix(row: dict[str, Any]) -> str:
    keys = ("train/sft_loss", "train/bt_loss", "train/accuracy", "eval/loss", "eval/accuracy")
    return " ".join(f"{k.split('/')[-1]}={row[k]:.3f}" for k in keys if k in row)


def _write_summary(out: Path, plan: SFTPlan, updates: int) -> None:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if any(k.startswith("eval/") for k in r)]
    summary = {
        "task": plan.cfg.sft.task,
        "model": str((out / MODEL_FOLDER).resolve()),
        "metrics": str((out / "metrics.jsonl").resolve()),
        "updates": updates,
        "train_items": len(plan.data.train),
        "held_out_items": len(plan.data.held_out),
        "skipped_over_max_len": plan.data.skipped,
        "first_eval": evals[0] if evals else None,
        "last_eval": evals[-1] if evals else None,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
