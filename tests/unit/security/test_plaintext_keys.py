"""Start-up validation warns when an API key would go to another machine over plain http."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from cpe.compose import load_config
from cpe.net import is_loopback, is_plaintext_remote
from cpe.validate import validate

KEY_ENV = "CPE_TEST_PLAINTEXT_KEY"
KEY = "sk-plain-5e2d0c4b9a1f"


@pytest.fixture(scope="module")
def base():
    return load_config(
        [
            "experiment=tiny_cpu",
            "grm=openai",
            "cluster.pools.grm.engines=0",
            f"grm.openai.api_key_env={KEY_ENV}",
            f"eval.judge.openai.api_key_env={KEY_ENV}",
        ]
    )


def _with_grm_url(cfg, url: str):
    return dataclasses.replace(
        cfg,
        grm=dataclasses.replace(cfg.grm, openai=dataclasses.replace(cfg.grm.openai, base_url=url)),
    )


def _warnings(cfg, caplog) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cpe.validate"):
        validate(cfg)
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://127.3.2.1:8000/v1",
        "http://localhost:8000/v1",
        "http://[::1]:8000/v1",
        "https://10.0.0.5/v1",
        "https://api.example.com/v1",
    ],
)
def test_loopback_or_https_endpoints_do_not_warn(base, url, caplog, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    assert _warnings(_with_grm_url(base, url), caplog) == []


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000/v1", "HTTP://grm.internal/v1"])
def test_a_key_over_plain_http_to_another_machine_warns(base, url, caplog, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    [line] = _warnings(_with_grm_url(base, url), caplog)
    assert line.startswith(f"grm.openai.base_url={url!r}")
    assert f"${KEY_ENV}" in line and "unencrypted" in line and KEY not in line


@pytest.mark.parametrize("value", [None, ""])
def test_no_key_set_no_warning(base, value, caplog, monkeypatch):
    if value is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, value)
    assert _warnings(_with_grm_url(base, "http://10.0.0.5:8000/v1"), caplog) == []


def test_an_endpoint_not_in_use_does_not_warn(base, caplog, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    cfg = _with_grm_url(base, "http://10.0.0.5:8000/v1")
    grm = dataclasses.replace(
        cfg.grm, backend="python", python_function="cpe.reward.rules:letter_reward"
    )
    assert _warnings(dataclasses.replace(cfg, grm=grm), caplog) == []


def test_the_eval_judge_endpoint_warns_too(base, caplog, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    judge = dataclasses.replace(
        base.eval.judge,
        backend="openai",
        openai=dataclasses.replace(base.eval.judge.openai, base_url="http://judge:8000/v1"),
    )
    cfg = dataclasses.replace(base, eval=dataclasses.replace(base.eval, judge=judge))
    [line] = _warnings(cfg, caplog)
    assert line.startswith("eval.judge.openai.base_url='http://judge:8000/v1'")


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("[::1]", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("10.0.0.5", False),
        ("128.0.0.1", False),
        ("localhost.example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_is_plaintext_remote_needs_http_and_a_remote_host():
    assert is_plaintext_remote("http://10.0.0.5:8000/v1")
    assert not is_plaintext_remote("https://10.0.0.5:8000/v1")
    assert not is_plaintext_remote("http://127.0.0.1:8000/v1")
