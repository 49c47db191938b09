"""What each model-serving ``grm.backend`` starts on the GRM pool (cluster.pools.grm).

A backend listed here runs ``model.grm.path`` on that pool's bundles: vLLM engines for
``vllm``, Bradley-Terry scorer actors for ``bt``. Every other backend brings its own
reward (an endpoint, a function) and places nothing. The keys are the one answer to
"does this config run a GRM model", read by model_roles, validation and the planner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class GRMPool(Protocol):
    """The actors a backend started on the GRM pool; the system stops them on exit."""

    actors: list[Any]

    def shutdown(self) -> None: ...


def _vllm(placement: Any, cfg: Any, model_path: str, faults: Any = None) -> GRMPool:
    """GRM engines: fixed weights, so a dead one is rebuilt from ``model.grm.path`` alone."""
    from cpe.rollout.launch import engine_pool
    from cpe.trainer.system import grm_max_len

    grm = cfg.model.grm
    return engine_pool(
        placement, "grm", cfg, model_path, grm.dtype, grm_max_len(cfg), faults=faults
    )


def _bt(placement: Any, cfg: Any, model_path: str, faults: Any = None) -> GRMPool:
    """BT scorers: fixed weights too, so a dead one is rebuilt from ``model.grm.path``."""
    from cpe.reward.bt_backend import bt_pool

    return bt_pool(placement, cfg, model_path, bt_micro_batch_rows(cfg), faults)


def bt_micro_batch_rows(cfg: Any) -> int:
    """Rows a BT scorer forwards at once: the learners' micro-batch budget
    (learner.micro_batch_tokens or micro_batch_size) at the longest scored sequence."""
    from cpe.cluster.memory_plan import micro_batch_rows

    return micro_batch_rows(cfg, cfg.grm.max_prompt_tokens)


# (placement, cfg, model path, FaultLog or None) -> the pool's actors
GRM_POOL_STARTERS: dict[str, Callable[..., GRMPool]] = {"vllm": _vllm, "bt": _bt}


def runs_grm_model(backend: str) -> bool:
    """True when ``grm.backend`` serves ``model.grm.path`` on cluster.pools.grm."""
    return backend in GRM_POOL_STARTERS


def start_grm_pool(placement: Any, cfg: Any, model_path: str, faults: Any = None) -> GRMPool | None:
    """The configured backend's actors on the GRM pool, or None when it places none
    (``faults``: where rebuilt engines are counted, cpe.cluster.faults.FaultLog)."""
    starter = GRM_POOL_STARTERS.get(cfg.grm.backend)
    return starter(placement, cfg, model_path, faults) if starter else None
