"""Which folder a run writes to, and whether it may write there.

A run folder holds one run. A ``logging.run_dir`` with a time stamp (``${now:...}``, the
presets' default) or a sweep point names a new run: the folder is claimed by creating its
``config.yaml`` exclusively, so two runs started in the same second (or two sweeps)
never share one; the later one gets ``-2``, ``-3``... A fixed ``logging.run_dir`` names
a run to continue: it may hold only a run made with the same settings (up to the keys in
:data:`MAY_CHANGE_ON_RESUME`), so a resume never picks up another config's checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from cpe.config import OTHER_TOOLS_NODES, CPEConfig
from cpe.report.runs import flatten
from cpe.validate import ConfigError

CONFIG_FILE = "config.yaml"
MAX_SUFFIX = 1000
#: What may differ between a run's saved config and the command that resumes it: how
#: long it runs, how it is watched and stored, where the cluster is. Anything else would
#: continue a checkpoint under settings it was not trained with.
MAY_CHANGE_ON_RESUME = (
    "trainer.total_steps",
    "trainer.epochs",
    "trainer.resume",
    "trainer.save_every",
    "trainer.keep_checkpoints",
    "trainer.eval_every",
    "logging.run_dir",  # the folder itself, however it is spelt
    "logging.progress",
    "logging.sample_rows",
    "logging.wandb_mode",
    "logging.wandb_project",
    "logging.wandb_entity",
    "logging.wandb_group",
    "cluster.address",
    "cluster.pin_pools",  # where pools run, not what they compute
    "cluster.engine_restarts",  # how dead engines are handled, not what they compute
    "grm.max_invalid_share",  # a guard on when to stop, not what a step computes
    *OTHER_TOOLS_NODES,
)
MAX_LISTED = 4


def names_new_run(raw_run_dir: str) -> bool:
    """A ``logging.run_dir`` as written (unresolved) that stamps the start time."""
    return "${now:" in raw_run_dir


def claim_new(base: str | Path) -> Path:
    """``base``, or ``base-2``, ``base-3``..., whichever this process creates the config
    file of first (an exclusive create: atomic across processes and nodes sharing the
    filesystem)."""
    base = Path(base)
    for n in range(1, MAX_SUFFIX + 1):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        path.mkdir(parents=True, exist_ok=True)
        try:
            (path / CONFIG_FILE).open("x").close()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{base} and {MAX_SUFFIX - 1} suffixed folders are all taken")


def release_unused(path: str | Path) -> None:
    """Undo :func:`claim_new` for a run that stopped before writing anything."""
    config = Path(path) / CONFIG_FILE
    if config.exists() and config.stat().st_size == 0:
        config.unlink()
        try:
            Path(path).rmdir()
        except OSError:
            pass  # something else lives there (Hydra's files): leave the folder


def save_config(cfg: CPEConfig, run_dir: str | Path) -> Path:
    """The run's resolved config as ``config.yaml``: what resumes compare and reports
    read. It holds key variables' names only (validation refuses a config with a key)."""
    path = Path(run_dir) / CONFIG_FILE
    path.write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    return path


def check_same_run(cfg: CPEConfig) -> None:
    """Refuse a run folder that holds a run made with other settings, naming the keys."""
    saved_path = Path(cfg.logging.run_dir) / CONFIG_FILE
    if not saved_path.exists() or saved_path.stat().st_size == 0:
        return
    saved = flatten(OmegaConf.to_container(OmegaConf.load(saved_path)))
    current = flatten(OmegaConf.to_container(OmegaConf.structured(cfg)))
    # Keys only one side has come from another cpe version's schema: not compared.
    differing = [
        key
        for key in sorted(saved.keys() & current.keys())
        if saved[key] != current[key] and not key.startswith(MAY_CHANGE_ON_RESUME)
    ]
    if not differing:
        return
    listed = ", ".join(
        f"{k}: {saved[k]!r} there, {current[k]!r} now" for k in differing[:MAX_LISTED]
    )
    more = f" and {len(differing) - MAX_LISTED} more" if len(differing) > MAX_LISTED else ""
    raise ConfigError(
        [
            (
                "logging.run_dir",
                f"{saved_path.parent} holds a run made with other settings ({listed}{more}): "
                "continue it with its own settings or pick a new logging.run_dir",
            )
        ]
    )


#: Ray sets this in the driver of a job submitted with ``ray job submit`` / the Job SDK.
RAY_JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def check_outlives_job(cfg: CPEConfig) -> None:
    """Inside a Ray job the working dir is Ray's temporary copy: a run folder inside it
    would vanish with the cluster, so it must lie elsewhere (shared storage)."""
    if RAY_JOB_ENV not in os.environ:
        return
    folder, copy = Path(cfg.logging.run_dir).resolve(), Path.cwd().resolve()
    if folder == copy or copy in folder.parents:
        raise ConfigError(
            [
                (
                    "logging.run_dir",
                    f"{cfg.logging.run_dir!r} lies in this Ray job's temporary copy of the "
                    "working dir, which goes with the cluster: give an absolute path on "
                    "storage every node sees (python -m cpe.launch submit does)",
                )
            ]
        )
