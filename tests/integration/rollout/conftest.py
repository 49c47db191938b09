"""Shared fixtures for the rollout tests: a tiny model, a private TMPDIR, and a
transformers reference that computes the same log-probs as the engine."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import torch


@pytest.fixture(scope="session")
def private_tmpdir():
    # Short path: Ray's socket names must fit in 107 bytes.
    path = tempfile.mkdtemp(prefix="cpe-rollout-", dir="/tmp")
    old = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = path
    tempfile.tempdir = None
    yield path
    if old is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = old
    tempfile.tempdir = None
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> str:
    from cpe.models.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("models") / "tiny", seed=0))


@pytest.fixture(scope="session")
def hf_model_factory(tiny_model_path):
    def load():
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32)
        return model.eval()

    return load


@pytest.fixture(scope="session")
def tokenizer(tiny_model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_path)


@pytest.fixture(scope="session")
def chat_prompts(tokenizer) -> list[list[int]]:
    questions = ["How do I cook rice?", "Plan a cheap weekend trip by train."]
    return [
        list(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": q}], add_generation_prompt=True, tokenize=True
            )["input_ids"]
        )
        for q in questions
    ]
