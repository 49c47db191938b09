#!/usr/bin/env bash
# The GPU path's learner side on one GPU (python -m cpe.tools.gpu_smoke): ZeRO-2/3 bf16
# policy and value steps with gradient checkpointing, the export order the engines rely
# on, and the packed NCCL framing when vLLM is there. Needs torch (with CUDA to test the
# GPU), transformers, and what `pip install --no-index` finds in WHEELS for the rest.
# Prepare the wheels on a machine with a registry, then carry them with the tree:
#   python -m pip wheel --no-deps -w dist/smoke-wheels deepspeed==0.19.8 hydra-core==1.3.8 \
#       omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 filelock
#   bash scripts/gpu_smoke.sh dist/smoke-wheels
# Runs on CPU too (CI does: tests/integration/tools/test_gpu_smoke.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
WHEELS=${1:-}
if ! "$PY" -c "import deepspeed, hydra, omegaconf, filelock" 2>/dev/null; then
  [ -n "$WHEELS" ] || { echo "deepspeed/hydra/omegaconf/filelock missing: pass a wheel folder" >&2; exit 2; }
  "$PY" -m pip install --quiet --no-index --find-links "$WHEELS" \
    deepspeed hydra-core omegaconf antlr4-python3-runtime filelock
fi
start=$(date +%s)
PYTHONPATH=. "$PY" -m cpe.tools.gpu_smoke
echo "wall: $(( $(date +%s) - start )) s"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv
fi
