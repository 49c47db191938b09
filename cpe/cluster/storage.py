"""The run folder is shared storage: every node that hosts a pool must see it at the same
path, because learner ranks write their checkpoint shards there and resume reads them all
back. Checked once, right after placement and before any model loads."""

from __future__ import annotations

import secrets
from pathlib import Path

from cpe.cluster.placement import Placement

PROBE_NAME = ".cpe-shared-probe"


class RunDirNotShared(RuntimeError):
    """A node that hosts a pool cannot see the run folder the driver writes."""


def sees_probe(folder: str, token: str) -> bool:
    """On a node: does ``folder`` hold the probe file the driver wrote, with ``token``?"""
    probe = Path(folder) / PROBE_NAME
    try:
        return probe.read_text() == token
    except OSError:
        return False


def one_slot_per_node(layout: dict[str, list[str]]) -> dict[str, tuple[str, int]]:
    """For each node of a placement layout, the first (pool, slot) placed on it."""
    first: dict[str, tuple[str, int]] = {}
    for pool, nodes in layout.items():
        for slot, node in enumerate(nodes):
            first.setdefault(node, (pool, slot))
    return first


def blind_nodes(answers: dict[str, bool]) -> list[str]:
    """The nodes (as named in ``answers``) that did not see the probe."""
    return [where for where, seen in answers.items() if not seen]


def check_run_dir_shared(placement: Placement, layout: dict[str, list[str]], run_dir: str) -> None:
    """Raise :class:`RunDirNotShared` naming ``logging.run_dir`` and the blind nodes;
    ``layout`` is ``placement.layout()``."""
    import ray

    folder = str(Path(run_dir).resolve())
    token = secrets.token_hex(8)
    Path(folder).mkdir(parents=True, exist_ok=True)
    probe = Path(folder) / PROBE_NAME
    probe.write_text(token)
    try:
        # max_calls=1: the worker exits after probing, so no pooled worker that ran on
        # no CPU budget is later handed to an actor (its OMP threads would be wrong).
        check = ray.remote(num_cpus=0, max_calls=1)(sees_probe)
        refs = {}
        for node, (pool, slot) in one_slot_per_node(layout).items():
            options = {**placement.options_for(pool, slot), "num_cpus": 0, "num_gpus": 0}
            refs[f"node {node[:12]} ({pool})"] = check.options(**options).remote(folder, token)
        answers = dict(zip(refs, ray.get(list(refs.values())), strict=True))
    finally:
        probe.unlink(missing_ok=True)
    blind = blind_nodes(answers)
    if blind:
        raise RunDirNotShared(
            f"logging.run_dir={folder} is not visible from {', '.join(blind)}: run folders "
            "and checkpoints must be on storage every node mounts at the same path (NFS, a "
            "Kubernetes ReadWriteMany volume, ...); see docs/cluster.md"
        )
