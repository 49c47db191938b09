import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cpe.models.tiny import build_tiny_model


def test_tiny_model_is_deterministic_and_generates(tmp_path):
    a = build_tiny_model(tmp_path / "a", seed=3)
    b = build_tiny_model(tmp_path / "b", seed=3)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert json.loads((a / "tokenizer.json").read_text()) == json.loads(
        (b / "tokenizer.json").read_text()
    )

    tok = AutoTokenizer.from_pretrained(a)
    model = AutoModelForCausalLM.from_pretrained(a)
    assert model.config.vocab_size == len(tok)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hello"}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>assistant\n")
    ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
    torch.manual_seed(0)
    out = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids.shape[1]


def test_rebuild_is_skipped_when_spec_matches(tmp_path):
    path = build_tiny_model(tmp_path / "m", seed=1)
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    build_tiny_model(tmp_path / "m", seed=1)
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
