"""API keys come only from the environment and reach no file, log, wandb payload or error.

Each test sets a real-looking key in the variable the config names, then runs the code
that writes or prints what could carry it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from unit.reward.grm_fakes import failure

from cpe.compose import load_config, one_line_error
from cpe.config import JudgeConfig, OpenAIBackendConfig
from cpe.data.records import Record
from cpe.eval.openai_judge import OpenAIJudge
from cpe.keys import key_problems
from cpe.reward import GRMError
from cpe.reward.openai_backend import OpenAIBackend
from cpe.trainer.metrics import MetricsLogger
from cpe.trainer.run_folder import save_config
from cpe.trainer.system import _plain
from cpe.validate import ConfigError, validate

KEY_ENV = "CPE_TEST_SECURITY_KEY"
KEY = "sk-live-SECRET-4f1c9a77d2e04b1f"
OPENAI = ["experiment=tiny_cpu", "grm=openai", "cluster.pools.grm.engines=0"]


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture(scope="module")
def cfg():
    return load_config(
        [
            *OPENAI,
            f"grm.openai.api_key_env={KEY_ENV}",
            f"eval.judge.openai.api_key_env={KEY_ENV}",
            "eval.judge.backend=openai",
        ]
    )


def _files_holding(folder: Path, secret: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_the_config_holds_the_variable_name_and_validates(cfg):
    assert cfg.grm.openai.api_key_env == KEY_ENV
    validate(cfg)  # the key set in its variable is no problem


def test_run_folder_config_dump_has_no_key(cfg, tmp_path):
    path = save_config(cfg, tmp_path)
    assert KEY_ENV in path.read_text()
    assert _files_holding(tmp_path, KEY) == []


def test_wandb_payload_and_offline_wandb_files_have_no_key(cfg, tmp_path):
    payload = _plain(cfg)  # what the trainer hands to wandb.init(config=...)
    assert payload["grm"]["openai"]["api_key_env"] == KEY_ENV
    assert KEY not in repr(payload)
    logger = MetricsLogger(tmp_path, "offline", config=payload)
    logger.log(1, {"reward/mean": 0.5})
    logger.close()
    assert any((tmp_path / "wandb").rglob("*.wandb"))  # wandb really wrote its run
    assert _files_holding(tmp_path, KEY) == []


def test_start_up_logs_have_no_key(cfg, caplog, capfd):
    remote = dataclasses.replace(cfg.grm.openai, base_url="http://10.0.0.5:8000/v1")
    with caplog.at_level(logging.DEBUG):
        validate(dataclasses.replace(cfg, grm=dataclasses.replace(cfg.grm, openai=remote)))
        OpenAIBackend(remote)
        OpenAIJudge(cfg.eval.judge)
    out, err = capfd.readouterr()
    assert KEY_ENV in caplog.text  # the warning names the variable...
    assert KEY not in caplog.text + out + err  # ...never its value


@pytest.mark.parametrize("status", [401, 500])
def test_judge_errors_echoing_the_key_do_not_carry_it(chat_server, status, caplog):
    record = Record(id="r-1", persona={"name": "Ada"}, question="How do I sleep better?")
    server = chat_server(lambda n, b: failure(status, f"bad key {KEY}"))
    endpoint = OpenAIBackendConfig(
        base_url=server.base_url, api_key_env=KEY_ENV, timeout_s=2.0, max_retries=0
    )
    judge = OpenAIJudge(JudgeConfig(backend="openai", openai=endpoint, retries=0))
    with caplog.at_level(logging.DEBUG):
        try:
            texts = [str(judge.judge([(record, "a", "b")]))]
        except GRMError as exc:
            texts = [str(exc), repr(exc)]
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"  # the key was really sent
    assert KEY not in " ".join(texts) + caplog.text
    assert f"HTTP {status}" in " ".join(texts)


@pytest.mark.parametrize("override", ["grm.openai.api_key", "+grm.openai.api_key"])
def test_a_key_field_in_the_config_is_refused_without_echoing_it(override):
    with pytest.raises(Exception) as info:
        load_config([*OPENAI, f"{override}={KEY}"])
    line = one_line_error(info.value)
    assert "grm.openai.api_key" in line and KEY not in line


def test_a_key_given_as_the_variable_name_is_refused_without_echoing_it():
    with pytest.raises(ConfigError) as info:
        load_config([*OPENAI, f"grm.openai.api_key_env={KEY}"])
    line = one_line_error(info.value)
    assert "grm.openai.api_key_env: is not an environment variable name" in line
    assert KEY not in line


def test_a_key_pulled_into_any_value_by_interpolation_is_refused():
    overrides = [*OPENAI, f"grm.openai.api_key_env={KEY_ENV}"]
    with pytest.raises(ConfigError) as info:
        load_config([*overrides, f"grm.openai.model=${{oc.env:{KEY_ENV}}}"])
    assert info.value.problems == [
        (
            "grm.openai.model",
            f"holds the value of ${KEY_ENV}, an API key: keys stay in the environment",
        )
    ]
    assert KEY not in one_line_error(info.value)


def test_a_short_key_value_is_not_matched_against_ordinary_text(cfg, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "tiny")  # would match every "tiny" in the config
    assert key_problems(cfg) == []


def test_a_password_in_an_endpoint_url_is_refused_without_echoing_it():
    with pytest.raises(ConfigError) as info:
        load_config([*OPENAI, f"grm.openai.base_url=https://user:{KEY}@grm.example.com/v1"])
    line = one_line_error(info.value)
    assert line.startswith("grm.openai.base_url: carries a password") and KEY not in line
