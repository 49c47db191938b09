import pytest

from cpe.eval.policies import parse_policies, parse_policy

pytestmark = pytest.mark.unit


def _hf(folder):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


def _checkpoint(run, step, complete=True):
    ckpt = run / "checkpoints" / f"step_{step:06d}"
    _hf(ckpt / "policy_hf")
    if complete:
        (ckpt / "COMPLETE").write_text(str(step))
    return ckpt


def test_a_run_folder_means_its_newest_complete_checkpoint(tmp_path):
    run = tmp_path / "demo-1"
    _checkpoint(run, 2)
    _checkpoint(run, 4)
    _checkpoint(run, 6, complete=False)
    spec = parse_policy(str(run), "eval.policies[0]")
    assert spec.model_path == str(run / "checkpoints" / "step_000004" / "policy_hf")
    assert spec.name == "demo-1-step4"


def test_checkpoint_hf_folder_fixture_and_explicit_names(tmp_path):
    ckpt = _checkpoint(tmp_path / "r", 2)
    assert parse_policy(str(ckpt), "k").model_path == str(ckpt / "policy_hf")
    hf = _hf(tmp_path / "my-sft")
    assert parse_policy(str(hf), "k").name == "my-sft"
    assert parse_policy(f"base={hf}", "k").name == "base"
    assert parse_policy("fixture:tiny", "k").name == "tiny"


def test_unusable_specs_name_the_key(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"eval.policies\[1\].*config.json is missing"):
        parse_policies(["fixture:tiny", str(tmp_path / "empty")])
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(ValueError, match="no complete checkpoint"):
        parse_policy(str(tmp_path / "run"), "k")
    with pytest.raises(ValueError, match="two policies are named 'tiny'"):
        parse_policies(["fixture:tiny", "fixture:tiny"])
    with pytest.raises(ValueError, match="may use only"):
        parse_policy("a b=fixture:tiny", "k")
