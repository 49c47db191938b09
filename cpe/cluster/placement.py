"""The one owner of Ray placement groups.

``cluster.pools`` becomes one placement group per pool: GPU bundles on GPU, CPU bundles
standing in for them on CPU, so tests run the very code path production runs. Every
actor is placed through :meth:`Placement.options_for`; nothing else creates a group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cpe.config import ClusterConfig

ENGINE_POOLS = ("rollout", "grm")
RANK_POOLS = ("policy", "value", "reference")


class ClusterTooSmall(RuntimeError):
    """The running Ray cluster cannot host the pools the config asks for."""


@dataclass(frozen=True)
class PoolPlan:
    name: str
    slots: int  # engines or ranks
    devices_per_slot: int

    @property
    def devices(self) -> int:
        return self.slots * self.devices_per_slot

    def fits_one_node(self, devices_per_node: int) -> bool:
        """Placed with STRICT_PACK (all bundles on one node) when true, else PACK."""
        return self.devices <= devices_per_node

    def node_split(self, devices_per_node: int) -> tuple[int, int]:
        """(devices per node, nodes) the pool's placement group takes: one node when it
        fits, else nodes each holding as many whole bundles as fit."""
        if self.fits_one_node(devices_per_node):
            return self.devices, 1
        slots_per_node = max(1, devices_per_node // self.devices_per_slot)
        return slots_per_node * self.devices_per_slot, math.ceil(self.slots / slots_per_node)


def plan_pools(cluster: ClusterConfig) -> list[PoolPlan]:
    """The non-empty pools, in a fixed order."""
    plans = []
    for name in ENGINE_POOLS:
        pool = getattr(cluster.pools, name)
        plans.append(PoolPlan(name, pool.engines, pool.devices_per_engine))
    for name in RANK_POOLS:
        pool = getattr(cluster.pools, name)
        plans.append(PoolPlan(name, pool.ranks, pool.devices_per_rank))
    return [p for p in plans if p.slots > 0]


def pool_resource(pool: str) -> str:
    """The custom resource a node offers to host ``pool`` under ``cluster.pin_pools``."""
    return f"cpe_pool_{pool}"


def bundle_for(
    plan: PoolPlan, device: str, pinned: bool = False, cpus_per_gpu: int = 1
) -> dict[str, float]:
    """One slot's bundle: its GPUs and ``cpus_per_gpu`` CPUs each (the slot's host
    threads, cpe.cluster.threads), or its CPUs on CPU; ``pinned`` adds one unit of the
    pool's resource per device."""
    devices = float(plan.devices_per_slot)
    if device == "gpu":
        bundle = {"GPU": devices, "CPU": devices * cpus_per_gpu}
    else:
        bundle = {"CPU": devices}
    if pinned:
        bundle[pool_resource(plan.name)] = devices
    return bundle


def missing_resources(
    plans: list[PoolPlan],
    device: str,
    available: dict[str, float],
    pinned: bool = False,
    cpus_per_gpu: int = 1,
) -> list[str]:
    """Human-readable shortfalls of ``available`` (ray.cluster_resources()) for ``plans``."""
    need: dict[str, float] = {}
    for plan in plans:
        for key, amount in bundle_for(plan, device, pinned, cpus_per_gpu).items():
            need[key] = need.get(key, 0.0) + amount * plan.slots
    problems = []
    for key, amount in sorted(need.items()):
        have = available.get(key, 0.0)
        if have < amount:
            users = ", ".join(f"{p.name}={p.devices}" for p in plans)
            hint = (
                f" (cluster.pin_pools: start its nodes with --resources '{{\"{key}\": N}}')"
                if key.startswith("cpe_pool_")
                else ""
            )
            problems.append(
                f"{key}: the pools need {amount:g} ({users}) but the cluster has {have:g}{hint}"
            )
    return problems


class Placement:
    """Creates, owns and removes one placement group per pool."""

    def __init__(
        self,
        cluster: ClusterConfig,
        ready_timeout_s: float = 120.0,
        only: tuple[str, ...] | None = None,
    ):
        """``only``: place just these pools (evaluation needs no learner ranks)."""
        self.cluster = cluster
        self.plans = {p.name: p for p in plan_pools(cluster) if only is None or p.name in only}
        self.ready_timeout_s = ready_timeout_s
        self._groups: dict[str, object] = {}

    def create(self) -> Placement:
        import ray
        from ray.util.placement_group import placement_group

        cl = self.cluster
        problems = missing_resources(
            list(self.plans.values()), cl.device, ray.cluster_resources(), cl.pin_pools,
            cl.cpus_per_gpu,
        )  # fmt: skip
        if problems:
            raise ClusterTooSmall("cluster too small for cluster.pools: " + "; ".join(problems))
        try:
            for name, plan in self.plans.items():
                bundles = [self._bundle(plan)] * plan.slots
                strategy = (
                    "STRICT_PACK" if plan.fits_one_node(self.cluster.devices_per_node) else "PACK"
                )
                self._groups[name] = placement_group(bundles, strategy=strategy, name=f"cpe-{name}")
            for name, group in self._groups.items():
                self._wait_ready(name, group)
        except BaseException:  # a timeout, an error, Ctrl-C: no named group stays behind
            self.remove()
            raise
        return self

    def _wait_ready(self, name: str, group) -> None:
        import ray

        try:
            ray.get(group.ready(), timeout=self.ready_timeout_s)
        except ray.exceptions.GetTimeoutError as exc:
            raise ClusterTooSmall(
                f"placement group for pool '{name}' ({self.plans[name].slots} x "
                f"{self._bundle(self.plans[name])}) not ready after "
                f"{self.ready_timeout_s:.0f}s: the cluster cannot fit cluster.pools.{name}"
            ) from exc

    def slots(self, pool: str) -> int:
        return self.plans[pool].slots if pool in self.plans else 0

    def options_for(self, pool: str, index: int) -> dict:
        """``actor_cls.options(**...)`` kwargs placing an actor into bundle ``index``."""
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        plan = self.plans[pool]
        if not 0 <= index < plan.slots:
            raise IndexError(f"pool '{pool}' has {plan.slots} slots, asked for {index}")
        resources = self._bundle(plan)
        return {
            "num_cpus": resources.get("CPU", 0.0),
            "num_gpus": resources.get("GPU", 0.0),
            "scheduling_strategy": PlacementGroupSchedulingStrategy(
                placement_group=self._groups[pool],
                placement_group_bundle_index=index,
                placement_group_capture_child_tasks=True,
            ),
        }

    def _bundle(self, plan: PoolPlan) -> dict[str, float]:
        cl = self.cluster
        return bundle_for(plan, cl.device, cl.pin_pools, cl.cpus_per_gpu)

    def layout(self) -> dict[str, list[str]]:
        """The node id of every slot, by pool (written to the run folder: where it ran)."""
        from ray.util.placement_group import placement_group_table

        layout = {}
        for name, group in self._groups.items():
            nodes = placement_group_table(group)["bundles_to_node_id"]
            layout[name] = [nodes[i] for i in range(self.plans[name].slots)]
        return layout

    def remove(self) -> None:
        from ray.util.placement_group import remove_placement_group

        for group in self._groups.values():
            remove_placement_group(group)
        self._groups.clear()
