"""Compose, type and validate a config outside ``@hydra.main`` (tools, tests, drivers)."""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from cpe.config import CPEConfig
from cpe.validate import ConfigError, validate

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
PRESETS = ("tiny_cpu", "demo", "qwen2.5-7b", "qwen2.5-14b")


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The composed config for ``overrides`` (e.g. ``["experiment=tiny_cpu"]``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def to_typed(cfg: DictConfig) -> CPEConfig:
    """Resolve interpolations and turn the DictConfig into the dataclass tree."""
    return OmegaConf.to_object(cfg)


def load_config(overrides: list[str] | tuple[str, ...] = ()) -> CPEConfig:
    """Compose + type + validate. Raises with a message naming the key to fix."""
    typed = to_typed(compose(overrides))
    validate(typed)
    return typed


def one_line_error(exc: BaseException) -> str:
    """A user-facing, single-line summary of a composition or validation failure."""
    if isinstance(exc, ConfigError):
        return "; ".join(f"{key}: {msg}" for key, msg in exc.problems)
    for err in _chain(exc):
        full_key = getattr(err, "full_key", None)
        if full_key:
            msg = str(err).splitlines()[0]
            return f"{full_key}: {msg}"
    text = " ".join(str(exc).split()).split(" Config search path")[0]
    missing = re.search(r"Could not override '([^']+)'", text)
    if missing:
        return f"{missing.group(1)}: no such key (add it with +{missing.group(1)}=... only if you mean a new key)"
    return text


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
