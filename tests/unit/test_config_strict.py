"""Strict composition: unknown, renamed and removed keys and unset values stop start-up
with one line naming the key, whichever way the key came in."""

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from cpe.compose import CONF_DIR, RENAMED, compose, load_config, one_line_error, to_typed
from cpe.validate import ConfigError

REMOVED = (
    "rollout.behaviour_logprobs=true",
    "model.policy.trust_remote_code=true",
    "model.grm.trust_remote_code=true",
    "model.value.trust_remote_code=true",
)


def _error_for(*overrides):
    with pytest.raises(Exception) as info:
        load_config(["experiment=tiny_cpu", *overrides])
    return one_line_error(info.value)


@pytest.mark.parametrize("plus", ["", "+"])
@pytest.mark.parametrize(
    "override, expected",
    [
        ("cluster.foo=1", "cluster.foo: no such key"),
        ("foo.bar=1", "foo: no such key"),
        ("algorithm.kl.foo=1", "algorithm.kl.foo: no such key"),
        *[(o, f"{o.split('=')[0]}: no such key") for o in REMOVED],
        ("cluster.pools.critic.engines=0", "cluster.pools.critic: renamed to cluster.pools.grm"),
        ("data.eval_path=x", "data.eval_path: renamed to eval.data_path"),
        ("data.max_eval_records=1", "data.max_eval_records: renamed to eval.max_records"),
    ],
)
def test_unknown_removed_and_renamed_keys_stop_start_up(plus, override, expected):
    assert _error_for(plus + override) == expected


def test_a_renamed_pool_given_whole_names_its_new_key():
    expected = "cluster.pools.critic: renamed to cluster.pools.grm"
    assert _error_for("+cluster.pools.critic={engines: 0}") == expected
    assert RENAMED["cluster.pools.critic"] == "cluster.pools.grm"


def test_to_typed_refuses_added_keys_as_the_hydra_entry_point_calls_it():
    cfg = compose(["experiment=tiny_cpu", "+cluster.foo=1", "+data.eval_path=x"])
    with pytest.raises(ConfigError) as info:
        to_typed(cfg)
    assert info.value.problems == [
        ("data.eval_path", "renamed to eval.data_path"),
        ("cluster.foo", "no such key"),
    ]


def test_to_typed_ignores_the_hydra_node():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", ["experiment=tiny_cpu"], return_hydra_config=True)
    assert "hydra" in cfg and to_typed(cfg).name == "tiny_cpu"


def test_validate_alone_names_unset_paths():
    from cpe.config import CPEConfig
    from cpe.validate import validate

    with pytest.raises(ConfigError) as info:
        validate(CPEConfig())
    keys = [key for key, msg in info.value.problems if msg == "is not set"]
    assert keys == ["model.policy.path", "model.grm.path", "model.value.path", "data.train_path"]


def test_appending_an_existing_key_names_it():
    assert _error_for("+cluster.num_nodes=2") == (
        "cluster.num_nodes: already set; override it without the +"
    )


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["data=jsonl"], "data.train_path: is not set"),
        (["model.policy.path=???"], "model.policy.path: is not set"),
        (["model.value.path=???"], "model.value.path: is not set"),
        (
            ["grm=python", "cluster.pools.grm.engines=0"],
            "grm.python_function: is not set",
        ),
    ],
)
def test_unset_values_stop_start_up(overrides, expected):
    assert _error_for(*overrides) == expected


def test_to_typed_names_an_unset_value():
    with pytest.raises(ConfigError) as info:
        to_typed(compose(["experiment=tiny_cpu", "data=jsonl"]))
    assert info.value.problems == [("data.train_path", "is not set")]


def _unset_in(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _unset_in(value, f"{prefix}{key}.")
        elif value == "???":
            yield f"{prefix}{key}"


def _unset_group_values():
    """(group, option, key) for every ``???`` in a group file of conf/."""
    found = []
    for path in sorted(CONF_DIR.glob("*/*.yaml")):
        group, option = path.parent.name, path.stem
        tree = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        tree.pop("defaults", None)
        glob = "@package _global_" in path.read_text()
        prefix = "" if glob else f"{group}."
        found += [(group, option, key) for key in _unset_in(tree, prefix)]
    return found


def test_the_group_file_scan_finds_the_known_unset_values():
    found = {(g, o, k) for g, o, k in _unset_group_values()}
    assert {
        ("data", "jsonl", "data.train_path"),
        ("grm", "python", "grm.python_function"),
    } <= found


@pytest.mark.parametrize("group, option, key", _unset_group_values())
def test_every_unset_value_in_a_group_file_stops_start_up(group, option, key):
    # A ??? merged onto a schema default keeps the default: this fails if a group
    # file's ??? could ever be filled in silently.
    base = [] if group == "experiment" else ["experiment=tiny_cpu"]
    with pytest.raises(Exception) as info:
        load_config([*base, f"{group}={option}"])
    assert f"{key}: is not set" in one_line_error(info.value).split("; ")


def test_show_config_exits_2_with_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "cpe.tools.show_config", "experiment=tiny_cpu", "+cluster.foo=1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr == "config error: cluster.foo: no such key\n"


@pytest.mark.parametrize(
    "override, expected",
    [
        ("cluster.foo=1", "cluster.foo: no such key"),
        ("cluster.pools.critic.engines=0", "cluster.pools.critic: renamed to cluster.pools.grm"),
        ("data.eval_path=x", "data.eval_path: renamed to eval.data_path"),
        ("data.max_eval_records=1", "data.max_eval_records: renamed to eval.max_records"),
    ],
)
def test_train_exits_2_with_one_line_before_hydra(override, expected):
    # Without "+", Hydra itself would refuse the key with a multi-line report.
    out = subprocess.run(
        [sys.executable, "-m", "cpe.train", "experiment=tiny_cpu", override],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr == f"config error: {expected}\n"


@pytest.mark.parametrize(
    "override, expected",
    [
        ("~model", "model: is a config group and cannot be deleted (its keys would fall back"),
        ("~model=smollm2", "model: is a config group and cannot be deleted"),
        ("~rollout", "rollout: is a config group and cannot be deleted"),
        ("model=1", "model: is a config group: pick one of "),
        ("++grm=vllm", "grm: is a config group: ++ adds keys only; write group=option"),
        ("=1", "=1: names no key: write key=value"),
    ],
)
def test_a_group_deleted_or_given_a_value_names_the_group(override, expected):
    with pytest.raises(ConfigError) as info:
        compose(["experiment=tiny_cpu", override])
    assert one_line_error(info.value).startswith(expected), one_line_error(info.value)


def test_the_experiment_group_may_be_deleted_to_run_without_a_preset():
    assert to_typed(compose(["~experiment"])).name != to_typed(compose([])).name
