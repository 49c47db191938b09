import subprocess
import sys


def test_the_whole_stack_imports_on_cpu():
    code = "import cpe, vllm, ray, deepspeed, transformers, hydra, wandb, torch; print(torch.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1].endswith("+cpu")
