"""Parameter buckets and the HF folder writer."""

import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from cpe.learner.hf_io import save_hf_folder
from cpe.weight_sync.buckets import plan_buckets


def test_buckets_respect_the_byte_budget_and_keep_order():
    named = [(f"p{i}", torch.nn.Parameter(torch.zeros(n))) for i, n in enumerate([10, 10, 30, 5])]
    buckets = plan_buckets(named, bucket_bytes=80)  # 20 floats
    assert [[n for n, _ in b] for b in buckets] == [["p0", "p1"], ["p2"], ["p3"]]


def _source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "qwen2", "dtype": "bfloat16"}))
    (src / "tokenizer.json").write_text("{}")
    (src / "chat_template.jinja").write_text("x")
    (src / "cpe_fixture.json").write_text("{}")
    (src / "model.safetensors").write_text("old")
    return src


def test_folder_has_weights_config_tokenizer_and_no_tmp(tmp_path):
    src = _source(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.bin").write_text("old")
    named = [("w", torch.ones(2, 2)), ("b", torch.zeros(3))]
    save_hf_folder(out, named, src)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["chat_template.jinja", "config.json", "model.safetensors", "tokenizer.json"]
    assert not (tmp_path / "out.tmp").exists()
    assert torch.equal(load_file(out / "model.safetensors")["w"], torch.ones(2, 2))
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"


def test_sharded_folder_has_an_index(tmp_path):
    named = [("a", torch.zeros(4)), ("b", torch.ones(4))]
    out = save_hf_folder(tmp_path / "out", named, _source(tmp_path), max_shard_bytes=16)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert index["weight_map"] == {
        "a": "model-00001-of-00002.safetensors",
        "b": "model-00002-of-00002.safetensors",
    }
    assert index["metadata"]["total_size"] == 32


def test_shards_split_by_bytes(tmp_path):
    named = [("a", torch.zeros(4)), ("b", torch.ones(4)), ("c", torch.full((4,), 2.0))]
    out = save_hf_folder(tmp_path / "out", named, _source(tmp_path), max_shard_bytes=32)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    first, second = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    assert index["weight_map"] == {"a": first, "b": first, "c": second}
    with safe_open(out / first, "pt") as f:
        assert f.metadata() == {"format": "pt"}
    assert torch.equal(load_file(out / second)["c"], torch.full((4,), 2.0))
