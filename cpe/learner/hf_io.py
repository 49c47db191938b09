"""Writing a Hugging Face model folder from exported tensors, published atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from huggingface_hub import save_torch_state_dict

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
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write ``named`` tensors + the source's config and tokenizer (+ ``extra_files``,
    name -> bytes) to ``path``.

    Written under ``path.tmp`` and renamed, so a reader (a rollout engine reloading
    from disk) never sees a half-written folder.
    """
    path, source = Path(path), Path(source)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # model.safetensors, or model-0000i-of-0000n.safetensors + model.safetensors.index.json
    # (what transformers and vLLM look for), each file with metadata {"format": "pt"}.
    save_torch_state_dict(dict(named), tmp, max_shard_size=max_shard_bytes)
    write_config(source, tmp, named[0][1].dtype)
    copy_side_files(source, tmp)
    for name, data in (extra_files or {}).items():
        (tmp / name).write_bytes(data)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path
