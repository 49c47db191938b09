"""Writing a Hugging Face model folder from exported tensors, published atomically."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import torch

# Files copied verbatim from the source model folder next to the new weights.
SIDE_FILES = (
    "tokenizer*",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.*",
    "merges.txt",
    "chat_template*",
    "generation_config.json",
)
DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def shard_tensors(
    named: Iterable[tuple[str, torch.Tensor]], max_shard_bytes: int
) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in named:
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor.contiguous()
        size += nbytes
    return shards


def write_weights(folder: Path, shards: list[dict[str, torch.Tensor]]) -> None:
    from safetensors.torch import save_file

    if len(shards) == 1:
        save_file(shards[0], str(folder / "model.safetensors"), metadata={"format": "pt"})
        return
    weight_map, total = {}, 0
    for i, shard in enumerate(shards, start=1):
        filename = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / filename), metadata={"format": "pt"})
        for name, tensor in shard.items():
            weight_map[name] = filename
            total += tensor.numel() * tensor.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


def write_config(source: Path, folder: Path, dtype: torch.dtype) -> None:
    """The source config verbatim, except the dtype now names what was saved."""
    config = json.loads((source / "config.json").read_text())
    key = "torch_dtype" if "torch_dtype" in config else "dtype"
    config[key] = DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def copy_side_files(source: Path, folder: Path) -> None:
    for pattern in SIDE_FILES:
        for path in source.glob(pattern):
            if path.is_file():
                shutil.copy2(path, folder / path.name)


def save_hf_folder(
    path: str | Path,
    named: list[tuple[str, torch.Tensor]],
    source: str | Path,
    max_shard_bytes: int = 4 * 1024**3,
) -> Path:
    """Write ``named`` tensors + the source's config and tokenizer to ``path``.

    Written under ``path.tmp`` and renamed, so a reader (a rollout engine reloading
    from disk) never sees a half-written folder.
    """
    path, source = Path(path), Path(source)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write_weights(tmp, shard_tensors(named, max_shard_bytes))
    write_config(source, tmp, named[0][1].dtype)
    copy_side_files(source, tmp)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path
