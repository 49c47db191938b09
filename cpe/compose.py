"""Compose, type and validate a config outside ``@hydra.main`` (tools, tests, drivers).

Composition is strict: a key the schema does not know is an error even when it was
added with ``+``, and a ``???`` left by a group file stops start-up instead of
inheriting a schema default. Both checks live in :func:`to_typed`, the one step every
entry point (``cpe.train``, :func:`load_config`) takes.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path

from hydra.errors import (
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, MissingMandatoryValue

from cpe.config import CPEConfig
from cpe.validate import ConfigError, validate

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
PRESETS = ("tiny_cpu", "demo", "qwen2.5-7b", "qwen2.5-14b")

#: Old key -> new key, so an old override names its replacement instead of "no such key".
RENAMED = {
    "cluster.pools.critic": "cluster.pools.grm",
    "data.eval_path": "eval.data_path",
    "data.max_eval_records": "eval.max_records",
}


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The composed config for ``overrides`` (e.g. ``["experiment=tiny_cpu"]``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    check_group_overrides(overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            return hydra_compose(config_name="config", overrides=list(overrides))
        except ConfigCompositionException as exc:
            problem = _group_interpolation(exc, overrides)
            if problem is None:
                raise
            raise ConfigError([problem]) from exc


def _group_interpolation(exc: Exception, overrides) -> tuple[str, str] | None:
    """A group given an interpolation Hydra cannot resolve: its error names a placeholder
    node, ``_dummy_``, instead of the group."""
    if not any(getattr(err, "full_key", None) == "_dummy_" for err in _chain(exc)):
        return None
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if "${" in value and (CONF_DIR / key.split("@")[0]).is_dir():
            return key, f"{value}: {str(exc).splitlines()[0]}"
    return None


#: The one group that may be deleted: ``~experiment`` runs without a preset.
OPTIONAL_GROUPS = ("experiment",)


def check_group_overrides(overrides: list[str] | tuple[str, ...]) -> None:
    """An override without a key, a config group given a number, null or mapping (Hydra
    fails on these inside its own code, with a message that names neither), or a group
    deleted: its keys would silently fall back to the schema's defaults."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    problems = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        group = override.key_or_group
        if not group:
            problems.append((override.input_line, "names no key: write key=value"))
            continue
        if not (CONF_DIR / group).is_dir():
            continue
        options = ", ".join(sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml")))
        if override.is_force_add():
            problems.append((group, "is a config group: ++ adds keys only; write group=option"))
        elif override.is_delete() and group not in OPTIONAL_GROUPS:
            problems.append(
                (
                    group,
                    "is a config group and cannot be deleted (its keys would fall back to "
                    f"the schema's defaults): pick one of {options}",
                )
            )
        elif not _names_options(override):
            problems.append((group, f"is a config group: pick one of {options}"))
    if problems:
        raise ConfigError(problems)


def _names_options(override) -> bool:
    """A group's value is option names (a list of them unless deleting); a sweep passes."""
    value = override.value()
    if override.is_delete():
        return value is None or isinstance(value, str)
    items = value if isinstance(value, list) else [value]
    return not any(isinstance(item, None | bool | int | float | dict | list) for item in items)


def to_typed(cfg: DictConfig) -> CPEConfig:
    """Check key names and unset values, resolve interpolations, build the dataclass tree."""
    problems = key_problems(cfg)
    if problems:
        raise ConfigError(problems)
    return OmegaConf.to_object(_without_hydra(cfg))


def key_problems(cfg: DictConfig) -> list[tuple[str, str]]:
    """Unknown or renamed keys, then values still at ``???``; ``hydra`` is not ours.

    Read from the unresolved tree: an interpolation that cannot resolve yet must not
    hide a misspelt key.
    """
    tree = OmegaConf.to_container(cfg, resolve=False)
    tree.pop("hydra", None)
    unknown = list(_unknown_keys(tree, CPEConfig))
    unset = [key for key in _unset_keys(tree) if not _under(key, unknown)]
    return [key_problem(key) for key in unknown] + [(key, "is not set") for key in unset]


def key_problem(key: str) -> tuple[str, str]:
    """The finding for a key the schema does not have."""
    for old, new in RENAMED.items():
        if _under(key, [old]):
            return old, f"renamed to {new}"
    return key, "no such key"


def _unknown_keys(tree: dict, schema: type, prefix: str = "") -> Iterator[str]:
    hints = typing.get_type_hints(schema)
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if key not in hints:
            yield path
            continue
        child = _dataclass_in(hints[key])
        if child is not None and isinstance(value, dict):
            yield from _unknown_keys(value, child, f"{path}.")


def _unset_keys(node, path: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _unset_keys(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _unset_keys(value, f"{path}[{index}]")
    elif isinstance(node, str) and node == "???":
        yield path


def _dataclass_in(hint) -> type | None:
    """The dataclass behind ``X`` or ``X | None``; None for leaves, lists and dicts."""
    options = (hint,)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
    return next((t for t in options if dataclasses.is_dataclass(t)), None)


def _under(key: str, roots: list[str]) -> bool:
    return any(key == root or key.startswith((f"{root}.", f"{root}[")) for root in roots)


def _without_hydra(cfg: DictConfig) -> DictConfig:
    if "hydra" not in cfg:
        return cfg
    cfg = cfg.copy()
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


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
        if isinstance(err, OverrideParseException):
            name = err.override.strip() or repr(err.override)
            return f"{name}: cannot parse this override ({_parse_reason(err.message)})"
        if isinstance(err, MissingConfigException) and err.missing_cfg_file:
            group = err.missing_cfg_file.rsplit("/", 1)[0]
            options = ", ".join(err.options or []) or "none"
            return f"{group}: Could not find '{err.missing_cfg_file}'; options: {options}"
    for err in _chain(exc):
        problem = _omegaconf_problem(err)
        if problem:
            return "{}: {}".format(*problem)
    text = " ".join(str(exc).split()).split(" Config search path")[0]
    deleted = re.search(r"Could not delete (?:from config\. )?(.*?'([^'=]+)[^']*'.*)", text)
    if deleted:
        return f"{deleted.group(2)}: cannot delete it: {deleted.group(1)}"
    appended = re.search(r"An item is already at '([^']+)'", text)
    if appended:
        return f"{appended.group(1)}: already set; override it without the +"
    missing = re.search(r"Could not override '([^']+)'", text)
    if missing:
        return "{}: {}".format(*key_problem(missing.group(1)))
    located = re.search(r"^(.*?) full_key: (\S+)", text)
    if located:
        return f"{located.group(2)}: {located.group(1)}"
    return text


def _parse_reason(message: str) -> str:
    """Hydra's parser message, without its echo of the override and its help link."""
    lines = [line for line in message.splitlines() if line.strip()]
    caret = next((line for line in lines if line.strip() == "^"), None)
    if caret is not None:
        # "LexerNoViableAltException: <override>" above a caret under the bad character.
        return f"unexpected character at column {caret.index('^') - len(_LEXER_PREFIX) + 1}"
    skipped = ("Error parsing override", "See https://", _LEXER_PREFIX)
    details = [line.strip() for line in lines if not line.startswith(skipped)]
    return details[0] if details else "expected key=value"


_LEXER_PREFIX = "LexerNoViableAltException: "


def _omegaconf_problem(err: BaseException) -> tuple[str, str] | None:
    key = getattr(err, "full_key", None)
    if not key:
        return None
    if isinstance(err, ConfigKeyError | ConfigAttributeError):
        return key_problem(key)
    if isinstance(err, MissingMandatoryValue):
        return key, "is not set"
    return key, str(err).splitlines()[0]


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
