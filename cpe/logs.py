"""Logs a person can read: expected third-party warnings dropped, one line per step,
one line on Ctrl-C, one line on a fatal error.

``quiet_third_party`` drops only records listed in ``EXPECTED`` (logger name, level
WARNING, message format string and, where given, its first argument), so every other
warning and every error of the same loggers still gets through. ``CPE_LOG_ALL=1``
turns all of it off. No third-party import here: call it first, before vLLM, Ray or
DeepSpeed are imported, in the driver and in every actor.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

StrPath = str | Path

ALL_ENV = "CPE_LOG_ALL"
_LAYERWISE = "vllm.model_executor.model_loader.reload.layerwise"
_CPU_WORKER = "vllm.v1.worker.cpu_worker"
_RAY_AUTH = "ray._private.authentication.authentication_token_setup"


@dataclass(frozen=True)
class Expected:
    """One expected WARNING: ``msg`` starts the record's format string; ``arg0``, if
    given, holds the accepted endings of its first argument."""

    logger: str
    msg: str
    arg0: tuple[str, ...] = ()
    cpu_only: bool = False

    def matches(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not str(record.msg).startswith(self.msg):
            return False
        args = record.args if isinstance(record.args, tuple) else ()
        return not self.arg0 or (bool(args) and str(args[0]).endswith(self.arg0))


EXPECTED = (
    # Every weight sync: rotary embeddings have no checkpoint weights, and the tied LM
    # head shares the embedding (cpe re-packs it; an untied head that really missed its
    # weight fails cpe's strict check in cpe_finish_weight_update instead).
    Expected(_LAYERWISE, "%s: Failed to load weights", ("RotaryEmbedding", "ParallelLMHead")),
    # vLLM CPU engine start-up, once per engine.
    Expected("vllm.triton_utils.importing", "Triton is installed, but doesn't include CPU"),
    Expected("vllm.platforms.cpu", "Triton is not installed. triton-cpu is expected"),
    Expected("vllm.platforms.cpu", "Reset SSM cache type to float32"),
    Expected("vllm.config.vllm", "Model Runner V2 requires Triton"),
    Expected("vllm.config.vllm", "Enforce eager set, disabling torch.compile"),
    Expected("vllm.config.vllm", "Inductor compilation was disabled by user settings"),
    Expected("vllm.engine.arg_utils", "The global random seed is set to %d. Since VLLM_ENABLE"),
    Expected("vllm.engine.arg_utils", "This model does not officially support disabling chunked"),
    Expected(_CPU_WORKER, "%s is not found in LD_PRELOAD", ("libtcmalloc", "libiomp")),
    Expected(_CPU_WORKER, "CPU backend doesn't allow to use `torch.set_num_threads`"),
    # Ray's default (secure) mode; the "disabled" variant is NOT dropped.
    Expected(_RAY_AUTH, "Token authentication is enabled for this Ray cluster."),
    # DeepSpeed's fallback when it finds no GPU: expected only on CPU runs.
    Expected("DeepSpeed", "Setting accelerator to CPU.", cpu_only=True),
)

# (message regex, category, module regex) for Python warnings raised in library code.
EXPECTED_WARNINGS = (
    (r"`torch\.distributed\.reduce_op` is deprecated", FutureWarning, r"vllm\."),
    (r"`torch\.distributed\.all_gather_into_tensor` is deprecated", FutureWarning, r"torch\."),
)
CHATTY = ("vllm", "ray", "DeepSpeed", "torch.distributed", "triton", "httpx", "urllib3", "filelock")


@dataclass(frozen=True)
class DropExpected(logging.Filter):
    """Drops the ``EXPECTED`` records of one logger; equal instances make re-adding a no-op."""

    entries: tuple[Expected, ...]

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(e.matches(record) for e in self.entries)


def quiet_third_party(device: str = "cpu") -> dict[str, str]:
    """Install the filters and levels in this process (idempotent); returns the env vars
    actors need (merge into Ray's ``runtime_env["env_vars"]``)."""
    if os.environ.get(ALL_ENV) == "1":
        return {ALL_ENV: "1"}
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    entries = [e for e in EXPECTED if device == "cpu" or not e.cpu_only]
    for name in dict.fromkeys(e.logger for e in entries):
        mine = tuple(e for e in entries if e.logger == name)
        logging.getLogger(name).addFilter(DropExpected(mine))
    for name in CHATTY:
        lg = logging.getLogger(name)
        level = os.environ["VLLM_LOGGING_LEVEL"] if name == "vllm" else logging.WARNING
        if lg.getEffectiveLevel() < logging.WARNING or name == "vllm":
            lg.setLevel(level)
    for message, category, module in EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    return {
        "VLLM_LOGGING_LEVEL": os.environ["VLLM_LOGGING_LEVEL"],
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # actors only load local files
    }


def startup_note(device: str = "cpu") -> str:
    """What a person may still see at start-up, and why it is fine."""
    lines = [
        f"cpe: expected third-party warnings are hidden ({ALL_ENV}=1 shows all of them).",
        "  Ray merges identical actor lines into '[repeated Nx across cluster]'.",
    ]
    if device == "cpu":
        lines[1:1] = [
            "  Harmless on CPU: 'DeepSpeed ...shm_comm_op built successfully' (per learner),",
            "  vLLM's 'NUMA binding: Using MEMBIND policy' (per engine); vLLM runs without",
            "  tcmalloc/iomp preloaded (slower, not wrong).",
        ]
    return "\n".join(lines)


_explained = False


def explain_once(device: str = "cpu", file=None) -> bool:
    """Print ``startup_note`` once per process; True if it printed now."""
    global _explained
    if _explained or os.environ.get(ALL_ENV) == "1":
        return False
    _explained = True
    print(startup_note(device), file=file or sys.stderr, flush=True)
    return True


# time/<phase> keys in step order, with their short labels; other phases are left out.
PHASES = (
    ("pipeline", "pipe"),  # generate..score overlapped (trainer.pipeline_chunks > 1)
    ("generate", "gen"),
    ("critique", "crit"),
    ("edit", "edit"),
    ("score", "score"),
    ("logprob", "lp"),
    ("update", "upd"),
    ("sync", "sync"),
    ("checkpoint", "ckpt"),
    ("eval", "eval"),
    ("other", "other"),
    ("step", "total"),
)


def _num(metrics: dict[str, float], key: str) -> float | None:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def step_line(step: int, total: int, metrics: dict[str, float]) -> str:
    """One progress line; metrics that are missing or not finite are left out."""
    parts = [f"step {step}/{total}"]
    reward, edit = _num(metrics, "original/reward_mean"), _num(metrics, "edit/reward_mean")
    if reward is not None:
        parts.append(f"reward {reward:.2f}" + (f" (edit {edit:.2f})" if edit is not None else ""))
    elif edit is not None:
        parts.append(f"edit reward {edit:.2f}")
    if (length := _num(metrics, "original/length_tokens")) is not None:
        parts.append(f"len {length:.0f}")
    if (invalid := _num(metrics, "grm/invalid_rate")) is not None:
        parts.append(f"invalid {100 * invalid:.1f}%")
    seconds = {label: _num(metrics, f"time/{phase}") for phase, label in PHASES}
    parts.append(" ".join(f"{k} {v:.1f}s" for k, v in seconds.items() if v is not None))
    return "  ".join(p for p in parts if p)


_DROPPED = re.compile(r"^\+{0,2}(logging\.run_dir|trainer\.resume)=")


def resume_command(run_dir: StrPath, overrides: Sequence[str] = ()) -> str:
    """The command that resumes ``run_dir``: the run's own overrides (Hydra's
    ``overrides.task``) without run_dir/resume, then ``logging.run_dir=<run_dir>``."""
    kept = [o for o in overrides if not _DROPPED.match(o)]
    args = [*kept, f"logging.run_dir={run_dir}"]
    return "python -m cpe.train " + " ".join(shlex.quote(a) for a in args)


def interrupted_message(run_dir: StrPath, latest: StrPath | None, overrides=()) -> str:
    """The one line printed on Ctrl-C; ``overrides`` as for ``resume_command``."""
    command = resume_command(run_dir, overrides)
    if latest is None:
        return f"interrupted before the first checkpoint; this starts over: {command}"
    return f"interrupted; last checkpoint {latest}; resume with: {command}"


def error_banner(exc: BaseException, traceback_at: str = "above") -> str:
    """One line naming the error; a Ray task error is reported by its cause and actor."""
    cause = getattr(exc, "cause", None)
    inner = cause if isinstance(cause, BaseException) else exc
    where = getattr(exc, "proctitle", None) if inner is not exc else None
    lines = str(inner).strip().splitlines()
    text = lines[0] if lines else ""
    text = text if len(text) <= 200 else text[:197] + "..."
    head = f"{type(inner).__name__}: {text}" if text else type(inner).__name__
    return f"cpe FAILED{f' in {where}' if where else ''}: {head}  (full traceback {traceback_at})"
