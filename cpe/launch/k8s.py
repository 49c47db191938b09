"""KubeRay manifests generated from a cpe config, so that pools and pods cannot disagree.

``python -m cpe.launch k8s experiment=qwen2.5-7b [--kind raycluster|rayjob]`` prints a
PersistentVolumeClaim for run folders and a ``ray.io/v1`` RayCluster or RayJob: a head
without GPUs and one worker group per non-empty pool, its pods shaped as the pool's
placement group packs (cpe.cluster.placement: the whole pool on one node when it fits). ``--examples`` rewrites the committed examples in
``launch/k8s/`` (a test checks they are current).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from cpe.cluster.placement import plan_pools, pool_resource
from cpe.config import CPEConfig
from cpe.launch.submit import entrypoint

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "launch" / "k8s"
EXAMPLE_PRESETS = ("qwen2.5-7b", "qwen2.5-14b")
KINDS = ("raycluster", "rayjob")
RUNS_MOUNT, RUNS_CLAIM = "/runs", "cpe-runs"
IMAGE = "cpe:gpu"  # built from docker/Dockerfile and pushed to your registry (--image)
RAY_VERSION = "2.60.0"  # the locked Ray (uv.lock); KubeRay checks it against the image


@dataclass(frozen=True)
class PodShape:
    """What a pod gets per GPU. Sized for 8-GPU nodes with ~1 TB of RAM: vLLM's CPU swap
    and DeepSpeed's pinned buffers live in host memory, vLLM and NCCL in /dev/shm."""

    cpus_per_gpu: int = 10
    memory_gi_per_gpu: int = 110
    shm_gi_per_gpu: int = 16
    memory_gi_per_cpu: int = 8  # CPU presets: a device is a CPU (cpe.cluster.threads)
    head_cpus: int = 8
    head_memory_gi: int = 32
    runs_storage_gi: int = 2048


@dataclass(frozen=True)
class Site:
    """Where the manifests go: the image to run and the storage class of the run volume
    (it must offer ReadWriteMany: NFS, CephFS, EFS, Filestore...; None = the default)."""

    image: str = IMAGE
    storage_class: str | None = None


@dataclass(frozen=True)
class WorkerGroup:
    pool: str
    devices_per_pod: int  # GPUs on a GPU preset, CPUs on a CPU one
    replicas: int


def worker_groups(cfg: CPEConfig) -> list[WorkerGroup]:
    """One group per pool with devices, pods shaped as its placement group packs: the
    whole pool on one pod when it fits a node (STRICT_PACK), else whole bundles per pod."""
    per_node = cfg.cluster.devices_per_node
    return [WorkerGroup(plan.name, *plan.node_split(per_node)) for plan in plan_pools(cfg.cluster)]


def pool_resources_param(group: WorkerGroup) -> str:
    """``ray start --resources`` of a group's pods (KubeRay passes it through a shell,
    hence the single quotes)."""
    return "'" + json.dumps({pool_resource(group.pool): group.devices_per_pod}) + "'"


def k8s_name(text: str) -> str:
    """A DNS-1123 label: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50]


def _container(name: str, image: str, cpus: int, memory_gi: int, gpus: int) -> dict:
    resources = {"cpu": str(cpus), "memory": f"{memory_gi}Gi"}
    if gpus:
        resources["nvidia.com/gpu"] = str(gpus)
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "volumeMounts": [
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "runs", "mountPath": RUNS_MOUNT},
        ],
    }


def _volumes(shm_gi: int) -> list[dict]:
    return [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{shm_gi}Gi"}},
        {"name": "runs", "persistentVolumeClaim": {"claimName": RUNS_CLAIM}},
    ]


def _pod(container: dict, shm_gi: int) -> dict:
    # The images run as uid 1000 (docker/): fsGroup makes the mounted run volume writable.
    return {
        "spec": {
            "securityContext": {"fsGroup": 1000},
            "containers": [container],
            "volumes": _volumes(shm_gi),
        }
    }


def _worker(gpu: bool, devices: int, image: str, shape: PodShape) -> tuple[dict, int]:
    """A worker container and its /dev/shm size in GiB."""
    if gpu:
        cpus, memory = devices * shape.cpus_per_gpu, devices * shape.memory_gi_per_gpu
        return _container(
            "ray-worker", image, cpus, memory, devices
        ), devices * shape.shm_gi_per_gpu
    memory = devices * shape.memory_gi_per_cpu
    return _container("ray-worker", image, devices, memory, 0), max(1, memory // 4)


def cluster_spec(cfg: CPEConfig, image: str, shape: PodShape) -> dict:
    if cfg.cluster.device == "gpu" and cfg.cluster.cpus_per_gpu > shape.cpus_per_gpu:
        raise ValueError(
            f"cluster.cpus_per_gpu={cfg.cluster.cpus_per_gpu} is more than the "
            f"{shape.cpus_per_gpu} CPUs per GPU a worker pod offers"
        )
    head = _container("ray-head", image, shape.head_cpus, shape.head_memory_gi, 0)
    head["ports"] = [
        {"containerPort": 6379, "name": "gcs"},
        {"containerPort": 8265, "name": "dashboard"},
        {"containerPort": 10001, "name": "client"},
    ]
    workers = []
    for group in worker_groups(cfg):
        container, shm_gi = _worker(
            cfg.cluster.device == "gpu", group.devices_per_pod, image, shape
        )
        workers.append(
            {
                "groupName": group.pool,
                "replicas": group.replicas,
                "minReplicas": group.replicas,
                "maxReplicas": group.replicas,
                # The pool lands on its own group when the run sets cluster.pin_pools.
                "rayStartParams": {"resources": pool_resources_param(group)},
                "template": _pod(container, shm_gi),
            }
        )
    return {
        "rayVersion": RAY_VERSION,
        "headGroupSpec": {
            "rayStartParams": {"num-gpus": "0"},  # the driver and the GCS only
            "template": _pod(head, shape.shm_gi_per_gpu),
        },
        "workerGroupSpecs": workers,
    }


def rayjob_entrypoint(cfg: CPEConfig, overrides: list[str]) -> str:
    """The training command: the overrides given, the run folder on the volume and each
    pool pinned to its worker group (unless set). The default folder is fixed, named after
    the job, so that a retried submission continues the run from its last checkpoint."""
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    extra = []
    if "logging.run_dir" in given:
        run_dir = Path(cfg.logging.run_dir)
        if not run_dir.is_relative_to(RUNS_MOUNT):
            raise ValueError(
                f"logging.run_dir={cfg.logging.run_dir} is not on the run volume: the RayJob "
                f"mounts it at {RUNS_MOUNT}; give a folder under it or leave the key out"
            )
    else:
        extra.append(f"logging.run_dir={RUNS_MOUNT}/{k8s_name(f'cpe-{cfg.name}')}")
    if "cluster.pin_pools" not in given:
        extra.append("cluster.pin_pools=true")
    return entrypoint([*overrides, *extra])


def manifests(
    cfg: CPEConfig,
    overrides: list[str],
    kind: str,
    site: Site = Site(),
    shape: PodShape = PodShape(),
) -> list[dict]:
    """The PVC and the RayCluster or RayJob for ``cfg``."""
    if kind not in KINDS:
        raise ValueError(f"--kind must be one of {list(KINDS)}, got {kind!r}")
    name = k8s_name(f"cpe-{cfg.name}")
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": RUNS_CLAIM},
        "spec": {
            "accessModes": ["ReadWriteMany"],  # every pod reads and writes run folders
            "resources": {"requests": {"storage": f"{shape.runs_storage_gi}Gi"}},
        },
    }
    if site.storage_class:
        pvc["spec"]["storageClassName"] = site.storage_class
    spec = cluster_spec(cfg, site.image, shape)
    if kind == "raycluster":
        body = {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": {"name": name},
            "spec": spec,
        }
    else:
        body = {
            "apiVersion": "ray.io/v1",
            "kind": "RayJob",
            "metadata": {"name": name},
            "spec": {
                "entrypoint": rayjob_entrypoint(cfg, overrides),
                "shutdownAfterJobFinishes": True,
                "ttlSecondsAfterFinished": 3600,
                "submitterConfig": {"backoffLimit": 2},
                "rayClusterSpec": spec,
            },
        }
    return [pvc, body]


def render(cfg: CPEConfig, overrides: list[str], kind: str, site: Site = Site()) -> str:
    header = (
        f"# Generated by: python -m cpe.launch k8s {' '.join(overrides)} --kind {kind}\n"
        "# Edit the cpe config and regenerate; do not edit by hand.\n"
    )
    return header + yaml.safe_dump_all(manifests(cfg, overrides, kind, site), sort_keys=False)


def example_path(preset: str, kind: str) -> Path:
    return EXAMPLES_DIR / f"{preset}-{kind}.yaml"


def write_examples() -> list[Path]:
    from cpe.compose import load_config

    written = []
    for preset in EXAMPLE_PRESETS:
        overrides = [f"experiment={preset}"]
        cfg = load_config(overrides)
        for kind in KINDS:
            path = example_path(preset, kind)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(cfg, overrides, kind))
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cpe.launch k8s",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--kind", default="raycluster", choices=KINDS)
    p.add_argument("--image", default=IMAGE)
    p.add_argument("--storage-class", help="of the run volume; must offer ReadWriteMany")
    p.add_argument("--examples", action="store_true", help=f"rewrite {EXAMPLES_DIR}")
    p.add_argument("overrides", nargs="*", help="cpe config overrides, e.g. experiment=qwen2.5-7b")
    args = p.parse_args(argv)
    if args.examples:
        for path in write_examples():
            print(f"wrote {path}")
        return 0
    from cpe.compose import load_config, one_line_error

    try:
        cfg = load_config(args.overrides)
    except Exception as exc:  # noqa: BLE001 - one actionable line
        print(f"config error: {one_line_error(exc)}", file=sys.stderr)
        return 2
    try:
        text = render(cfg, args.overrides, args.kind, Site(args.image, args.storage_class))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
