"""Hydra entry point: ``python -m cpe.train experiment=NAME key=value ...``.

Order matters: config and data are checked first (seconds), then Ray, engines and
learners start (minutes). A bad setting never costs a cluster start-up.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import sys
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from cpe.compose import CONF_DIR, compose, one_line_error, to_typed
from cpe.config import CPEConfig
from cpe.data import DataError
from cpe.launch.sweep import record_failed_point
from cpe.logs import error_banner, explain_once, interrupted_message, quiet_third_party
from cpe.trainer.checkpoint import CheckpointError, CheckpointManager
from cpe.trainer.preflight import Preflight, prepare, total_steps
from cpe.trainer.run_folder import claim_new, names_new_run, release_unused, save_config
from cpe.validate import validate


def run(cfg: CPEConfig, ready: Preflight | None = None) -> Path:
    """Train (``ready``: what :func:`prepare` found, else it runs here); returns the run folder."""
    from cpe.trainer.system import build_driver

    ready = ready or prepare(cfg)
    run_dir = Path(cfg.logging.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir)
    started = time.time()
    driver, system = build_driver(
        cfg, ready.train, total_steps(cfg, len(ready.train)), ready.resume
    )
    try:
        driver.fit()
    except KeyboardInterrupt:
        # A second Ctrl-C must not break the clean-up below (and print a second traceback).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise
    finally:
        driver.logger.close()
        system.shutdown()
    latest = driver.checkpoints.latest()
    summary = {
        "name": cfg.name,
        "run_dir": str(run_dir.resolve()),
        "metrics": str((run_dir / "metrics.jsonl").resolve()),
        "samples": str((run_dir / "samples").resolve()),
        "checkpoint": str(latest.resolve()) if latest else None,
        "steps": driver.step,
        "wall_s": round(time.time() - started, 1),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    print("\n".join(f"{k:>10}: {v}" for k, v in summary.items()))
    return run_dir


def claim_run_folder(cfg: CPEConfig, dcfg: DictConfig) -> tuple[CPEConfig, bool]:
    """A stamped ``logging.run_dir`` or a sweep point names a new run: its folder (a
    point's is ``<sweep dir>/<job number>``; with a fixed run_dir, that folder or the next
    free ``-2``...) is claimed for this process alone. A fixed one outside a sweep is
    continued (checked by ``prepare``). Returns the config and whether it claimed."""
    raw = str(OmegaConf.to_container(dcfg.logging, resolve=False)["run_dir"])
    hydra = HydraConfig.get()
    sweep = hydra.mode == RunMode.MULTIRUN
    stamped = names_new_run(raw)
    if not (sweep or stamped):
        return cfg, False
    folder = claim_new(hydra.runtime.output_dir if sweep and stamped else cfg.logging.run_dir)
    group = cfg.logging.wandb_group or (Path(hydra.sweep.dir).name if sweep else None)
    logging_cfg = dataclasses.replace(cfg.logging, run_dir=str(folder), wandb_group=group)
    return dataclasses.replace(cfg, logging=logging_cfg), True


def checked_start(cfg: CPEConfig) -> Preflight:
    """What :func:`prepare` finds; bad input (a refused checkpoint too) exits 2 with one line."""
    try:
        return prepare(cfg)
    except (DataError, ValueError, FileNotFoundError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(dcfg: DictConfig) -> None:
    try:
        train_once(dcfg)
    except SystemExit as exc:
        # A failed sweep point is recorded and the sweep goes on; Ctrl-C (130) stops it.
        if exc.code not in (1, 2) or HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        record_failed_point(HydraConfig.get(), int(exc.code))


def train_once(dcfg: DictConfig) -> None:
    """One training from a composed config; exits 2 on bad input, 1 on a failure."""
    try:
        cfg = to_typed(dcfg)
        validate(cfg)
    except Exception as exc:  # noqa: BLE001 - report one actionable line, no traceback
        print(f"config error: {one_line_error(exc)}", file=sys.stderr)
        sys.exit(2)
    quiet_third_party(cfg.cluster.device)
    explain_once(cfg.cluster.device)
    cfg, claimed = claim_run_folder(cfg, dcfg)
    try:
        ready = checked_start(cfg)
    except SystemExit:
        if claimed:
            release_unused(cfg.logging.run_dir)
        raise
    try:
        run(cfg, ready)
    except KeyboardInterrupt:
        latest = CheckpointManager(cfg.logging.run_dir).latest()
        overrides = list(HydraConfig.get().overrides.task)
        print(interrupted_message(cfg.logging.run_dir, latest, overrides), file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        logging.getLogger("cpe").exception("fatal error")
        print(error_banner(exc), file=sys.stderr)
        sys.exit(1)


def entry() -> None:
    """``python -m cpe.train``: an unknown or renamed key given on the command line would
    fail inside Hydra with a multi-line report; compose once here to print one line."""
    args = sys.argv[1:]
    if not any(a.startswith(("-", "hydra.")) for a in args):
        try:
            to_typed(compose(args))
        except Exception as exc:  # noqa: BLE001 - report one actionable line, no traceback
            print(f"config error: {one_line_error(exc)}", file=sys.stderr)
            sys.exit(2)
    main()


if __name__ == "__main__":
    entry()
