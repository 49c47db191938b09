"""API keys: the config names the environment variable that holds a key, never the key.

Every ``*.api_key_env`` field of the config is such a name. :func:`key_problems` refuses a
config that holds a key (a field that is no variable name, or any value that contains a
key set in the environment, e.g. through ``${oc.env:...}``, or an endpoint URL with a
password in it), so the run folder's
``config.yaml`` and the wandb config, both written from the config, cannot carry one.
:func:`plaintext_warnings` names each endpoint a key would reach over plain ``http://``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import fields, is_dataclass
from typing import Any
from urllib.parse import urlparse

from cpe.net import is_plaintext_remote

KEY_FIELD = "api_key_env"
# Shorter values are too common to tell a key from ordinary text (and no real key is).
MIN_KEY_CHARS = 8
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def key_endpoints(cfg: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, node) of every config node with an ``api_key_env`` field."""
    if not is_dataclass(cfg):
        return
    names = {f.name for f in fields(cfg)}
    if KEY_FIELD in names:
        yield prefix.rstrip("."), cfg
    for name in sorted(names - {KEY_FIELD}):
        yield from key_endpoints(getattr(cfg, name), f"{prefix}{name}.")


def key_problems(cfg: Any, environ: Mapping[str, str] = os.environ) -> list[tuple[str, str]]:
    """(key, message) for each place ``cfg`` holds a key instead of a variable's name.
    No message repeats the offending value: it would put the key in the log."""
    problems, keys = [], {}
    for path, node in key_endpoints(cfg):
        name = getattr(node, KEY_FIELD)
        problems += _endpoint_problems(path, name, getattr(node, "base_url", "") or "")
        if _ENV_NAME.fullmatch(name or "") and len(environ.get(name, "")) >= MIN_KEY_CHARS:
            keys[name] = environ[name]
    for path, value in _strings(cfg):
        for name, key in keys.items():
            if key in value:
                problems.append(
                    (path, f"holds the value of ${name}, an API key: keys stay in the environment")
                )
    return problems


def _endpoint_problems(path: str, name: str, base_url: str) -> list[tuple[str, str]]:
    problems = []
    if name and not _ENV_NAME.fullmatch(name):
        problems.append(
            (
                f"{path}.{KEY_FIELD}",
                "is not an environment variable name (value not shown): give the NAME of the "
                "variable that holds the key, never the key",
            )
        )
    if urlparse(base_url).password:
        problems.append(
            (
                f"{path}.base_url",
                "carries a password (value not shown): put the key in an environment variable "
                f"and name that in {path}.{KEY_FIELD}",
            )
        )
    return problems


def plaintext_warnings(cfg: Any, environ: Mapping[str, str] = os.environ) -> list[str]:
    """One line per endpoint that has a key set and would get it over plain, non-local http."""
    warnings = []
    for path, node in key_endpoints(cfg):
        name = getattr(node, KEY_FIELD)
        url = getattr(node, "base_url", "")
        if _in_use(cfg, path) and name and environ.get(name) and is_plaintext_remote(url):
            warnings.append(
                f"{path}.base_url={url!r} is plain http to another machine: the key in ${name} "
                "would travel unencrypted (use https, or a loopback address)"
            )
    return warnings


def _in_use(cfg: Any, path: str) -> bool:
    """``grm.openai`` is in use when ``grm.backend`` is ``openai`` (a node without a
    ``backend`` beside it always is)."""
    *parents, name = path.split(".")
    parent = cfg
    for part in parents:
        parent = getattr(parent, part)
    return getattr(parent, "backend", name) == name


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if is_dataclass(node):
        for f in fields(node):
            yield from _strings(getattr(node, f.name), f"{path}{f.name}.")
    elif isinstance(node, Mapping):
        for k, v in node.items():
            yield from _strings(v, f"{path}{k}.")
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path.rstrip('.')}[{i}].")
    elif isinstance(node, str):
        yield path.rstrip("."), node
