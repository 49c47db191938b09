"""Model paths as each node resolves them."""

import os
from pathlib import Path

import pytest

from cpe.models.paths import cache_dir_for_actors, resolve_model_path


def test_cache_dir_keeps_home_and_absolute_paths_and_anchors_relative_ones(tmp_path):
    assert cache_dir_for_actors("~/.cache/cpe/models") == "~/.cache/cpe/models"
    assert cache_dir_for_actors("/shared/models") == "/shared/models"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert cache_dir_for_actors("cache") == str(tmp_path.resolve() / "cache")
    finally:
        os.chdir(cwd)


def test_a_fixture_is_built_under_the_callers_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    path = Path(resolve_model_path("fixture:tiny", "~/models"))
    assert path == tmp_path / "models" / "tiny"
    assert (path / "config.json").is_file()
    assert (tmp_path / "models" / "tiny.lock").exists()  # concurrent builders queue on it


def test_a_folder_passes_through_and_a_missing_one_is_named(tmp_path):
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    with pytest.raises(FileNotFoundError, match="model.policy.path='/nope'"):
        resolve_model_path("/nope", key="model.policy.path")
