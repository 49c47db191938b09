# cpe — one command to set up and run the demo, one to set up and run the tests.
# EXTRA=cpu (default: vLLM's CPU build) or EXTRA=gpu (CUDA vLLM).
EXTRA ?= cpu
UV_VERSION := 0.13.9
UV := python3 -m uv
PY := .venv/bin/python
STAMP := .venv/.cpe-installed-$(EXTRA)
BENCH_STAMP := .venv/.cpe-installed-$(EXTRA)-bench
BENCH_ARGS ?=
export TMPDIR ?= /tmp

# The run `make eval` / `make report` look at: the newest demo run unless RUN=... is given.
RUN ?= $(lastword $(sort $(wildcard runs/demo-*)))

.PHONY: install demo eval report compare bench test test-unit test-integration lint format clean config help

help:
	@echo "make demo          install if needed, then a short real CPE training run (SmolLM2, CPU)"
	@echo "make eval          the demo's trained policy vs its starting model (RUN=runs/demo-...)"
	@echo "make report        plots + report.html of a run (RUN=runs/...)"
	@echo "make compare       PPO with a Bradley-Terry reward vs PPO with the GRM vs CPE, evaluated (~1 h)"
	@echo "make bench         cpe (GRPO, PPO, CPE) vs TRL's GRPOTrainer, same workload (~40 min)"
	@echo "make test          install if needed, then the whole test suite"
	@echo "make test-unit     fast unit tests only (no Ray, no engines)"
	@echo "make install       create .venv from uv.lock (EXTRA=cpu|gpu)"
	@echo "make config        print every preset's resolved, validated config"
	@echo "make lint|format|clean"

install: $(STAMP)

# `uv sync` from the lock with the given extras; then only the stamps of what is now
# installed are left (a plain install removes the bench extra, and its stamp).
# --compile-bytecode: uv writes no .pyc by default, and where PYTHONDONTWRITEBYTECODE is
# set Python never writes them, so every Ray actor would compile vLLM's and torch's
# sources again (`from vllm import LLM`: 23 s without, 13 s with, on 2 cores).
define sync_venv
	@if [ "$(EXTRA)" = cpu ] && ! ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then \
	  echo "the CPU torch wheel is missing from /opt/wheels: see README, 'The CPU torch wheel'"; exit 1; fi
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen --compile-bytecode --extra $(EXTRA) --extra dev $(1)
	@rm -f .venv/.cpe-installed-*
endef

# Re-runs only when the lock, the project metadata or this recipe changes.
$(STAMP): pyproject.toml uv.lock Makefile
	$(call sync_venv)
	@touch $@

$(BENCH_STAMP): pyproject.toml uv.lock Makefile
	$(call sync_venv,--extra bench)
	@touch $(STAMP) $@

# TRL comes from the `bench` extra; BENCH_ARGS e.g. "--models tiny --repeats 2".
bench: $(BENCH_STAMP)
	$(PY) -m cpe.bench $(BENCH_ARGS)

demo: install
	$(PY) -m cpe.train

eval: install
	@test -n "$(RUN)" || { echo "no runs/demo-* folder: run 'make demo' first or give RUN=..."; exit 1; }
	$(PY) -m cpe.eval experiment=demo 'eval.policies=[$(RUN)]'

# The paper's comparison on the embedded default; COMPARE_ARGS e.g. "trainer.total_steps=8".
COMPARE_ARGS ?=
compare: install
	$(PY) -m cpe.compare $(COMPARE_ARGS)

report: install
	@test -n "$(RUN)" || { echo "no runs/demo-* folder: run 'make demo' first or give RUN=..."; exit 1; }
	$(PY) -m cpe.report $(RUN)

test: install
	bash scripts/pytest.sh tests --durations=30

test-unit: install
	bash scripts/pytest.sh tests/unit -m unit

test-integration: install
	bash scripts/pytest.sh tests/integration -m integration

config: install
	$(PY) -m cpe.tools.show_config --all

lint: install
	$(PY) -m ruff check cpe tests
	$(PY) -m ruff format --check cpe tests

format: install
	$(PY) -m ruff check --fix cpe tests
	$(PY) -m ruff format cpe tests

clean:
	rm -rf .pytest_cache .ruff_cache build dist *.egg-info multirun outputs
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
