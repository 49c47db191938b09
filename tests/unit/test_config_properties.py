"""Property: any command-line overrides either make a config that validates, or stop
start-up the way ``python -m cpe.train`` does: exit 2 with one line naming the key (or
the override) to fix, a Hydra/OmegaConf/cpe config error underneath, and an existing
run folder left as it was."""

from __future__ import annotations

import string

import pytest
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from unit.run_folders import existing_run, snapshot

from cpe.compose import CONF_DIR, RENAMED, compose, one_line_error, to_typed
from cpe.train import train_once
from cpe.validate import ConfigError, validate

BASE = ["experiment=tiny_cpu"]
INTENDED = (ConfigError, HydraException, OmegaConfBaseException)
CONFIG_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _paths(node, prefix: str = ""):
    """Every node and leaf path of a composed config, list items included."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        path = f"{prefix}[{key}]" if isinstance(node, list) else f"{prefix}{key}"
        yield path, value
        if isinstance(value, dict | list) and value:
            yield from _paths(value, f"{path}." if isinstance(value, dict) else path)


TREE = OmegaConf.to_container(compose(BASE), resolve=False)
PATHS = dict(_paths(TREE))
LEAVES = sorted(path for path, value in PATHS.items() if not isinstance(value, dict | list))
GROUPS = sorted(path.name for path in CONF_DIR.iterdir() if path.is_dir())

keys = (
    st.sampled_from(LEAVES)
    | st.sampled_from(LEAVES).map(lambda key: f"{key}_x")
    | st.sampled_from(sorted(RENAMED))
    | st.sampled_from(GROUPS)
    | st.sampled_from(sorted(path for path, value in PATHS.items() if isinstance(value, dict)))
    | st.just("")
)
words = st.text(alphabet=string.ascii_letters + string.digits + "_-./:", min_size=1, max_size=10)
values = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["0", "-1", "1" * 30, "1e400", "-1e-400", "nan", "inf", "-inf", "0.5"]),
    st.floats().map(repr),
    st.sampled_from(["true", "false", "null", "''", "[]", "{}", "[1,2]", "[a,b]", "{a:1}"]),
    st.sampled_from(["${nope}", "${rollout.n}", "${oc.env:CPE_NOT_SET}", "${", "'open"]),
    words,
    st.text(max_size=8),
)
overrides = st.builds(
    lambda prefix, key, value, keep: f"{prefix}{key}={value}" if keep else f"{prefix}{key}",
    st.sampled_from(["", "", "", "+", "++", "~"]),
    keys,
    values,
    st.booleans() | st.just(True),
)


def _attempt(given_overrides: list[str]):
    """The steps ``cpe.train`` takes before anything starts; the exception, or None."""
    try:
        validate(to_typed(compose([*BASE, *given_overrides])))
    except Exception as exc:  # noqa: BLE001 - the property judges every exception
        return exc
    return None


def _names_a_key(message: str, given_overrides: list[str]) -> bool:
    named = {*PATHS, *GROUPS, *RENAMED, *given_overrides}
    named |= {o.lstrip("+~").split("=", 1)[0] for o in given_overrides}
    named |= {repr(o) for o in given_overrides if not o.strip()}
    return any(message.startswith(f"{key}: ") for key in named if key)


@CONFIG_SETTINGS
@given(given_overrides=st.lists(overrides, min_size=1, max_size=3))
def test_overrides_validate_or_fail_with_one_line_naming_the_key(given_overrides):
    exc = _attempt(given_overrides)
    if exc is None:
        return
    assert isinstance(exc, INTENDED), repr(exc)
    message = one_line_error(exc)
    assert message and "\n" not in message, message
    if isinstance(exc, ConfigError):
        for key, _ in exc.problems:
            assert _names_a_key(f"{key}: ", given_overrides), message
    else:
        assert _names_a_key(message, given_overrides), message


@CONFIG_SETTINGS
@given(given_overrides=st.lists(overrides, min_size=1, max_size=2))
def test_a_config_error_exits_2_and_leaves_the_run_folder_alone(tmp_path, capsys, given_overrides):
    run = existing_run(tmp_path / "run", with_config=True)
    before = snapshot(run)
    try:
        composed = compose([*BASE, f"logging.run_dir={run}", *given_overrides])
    except Exception:  # noqa: BLE001 - composition errors are the property above
        return
    expected = _attempt([f"logging.run_dir={run}", *given_overrides])
    if expected is None:
        return
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        train_once(composed)
    assert info.value.code == 2
    assert capsys.readouterr().err == f"config error: {one_line_error(expected)}\n"
    assert snapshot(run) == before
