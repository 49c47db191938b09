import io
import logging
import math
import warnings

import pytest

from cpe import logs

LAYERWISE = "vllm.model_executor.model_loader.reload.layerwise"
TOUCHED = {e.logger for e in logs.EXPECTED} | set(logs.CHATTY)


def record(name, msg, *args, level=logging.WARNING):
    return logging.LogRecord(name, level, "x.py", 1, msg, args, None)


@pytest.fixture
def clean(monkeypatch):
    """Undo what quiet_third_party does to this process's loggers, warnings and env."""
    monkeypatch.delenv(logs.ALL_ENV, raising=False)
    monkeypatch.delenv("VLLM_LOGGING_LEVEL", raising=False)
    saved = {n: (logging.getLogger(n).filters[:], logging.getLogger(n).level) for n in TOUCHED}
    for name in TOUCHED:  # an engine started earlier in this process installed them already
        logging.getLogger(name).filters[:] = []
    with warnings.catch_warnings():
        yield
    for name, (filters, level) in saved.items():
        logging.getLogger(name).filters[:] = filters
        logging.getLogger(name).setLevel(level)


def drop_filter(device="cpu", name=LAYERWISE):
    entries = tuple(e for e in logs.EXPECTED if e.logger == name)
    return logs.DropExpected(tuple(e for e in entries if device == "cpu" or not e.cpu_only))


def test_filter_drops_the_expected_weight_sync_warnings():
    f = drop_filter()
    for layer in ("RotaryEmbedding", "Llama3RotaryEmbedding", "ParallelLMHead"):
        assert not f.filter(record(LAYERWISE, "%s: Failed to load weights", layer))


def test_filter_keeps_other_records_of_the_same_logger():
    f = drop_filter()
    assert f.filter(record(LAYERWISE, "%s: Failed to load weights", "QKVParallelLinear"))
    assert f.filter(record(LAYERWISE, "%s: Failed to load weights"))  # no argument
    error = record(LAYERWISE, "%s: Failed to load weights", "ParallelLMHead", level=logging.ERROR)
    assert f.filter(error)
    assert f.filter(record(LAYERWISE, "layer %s lost its scales", "Attention"))
    assert f.filter(record(LAYERWISE, "out of memory", level=logging.ERROR))


def emitted(name, *calls):
    """Messages that reach a handler on logger ``name`` after its filters."""
    seen = []
    handler = logging.Handler()
    handler.emit = lambda r: seen.append(r.getMessage())
    lg = logging.getLogger(name)
    lg.addHandler(handler)
    try:
        for level, msg, *args in calls:
            lg.log(level, msg, *args)
    finally:
        lg.removeHandler(handler)
    return seen


def test_quiet_third_party_on_real_loggers(clean):
    env = logs.quiet_third_party("cpu")
    assert env == {"VLLM_LOGGING_LEVEL": "WARNING", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    W, E = logging.WARNING, logging.ERROR
    assert emitted(
        LAYERWISE,
        (W, "%s: Failed to load weights", "ParallelLMHead"),
        (W, "%s: Failed to load weights", "RotaryEmbedding"),
        (W, "%s: Failed to load weights", "QKVParallelLinear"),
        (E, "weight loader crashed"),
    ) == ["QKVParallelLinear: Failed to load weights", "weight loader crashed"]
    ray_auth = "ray._private.authentication.authentication_token_setup"
    assert emitted(
        ray_auth,
        (W, "Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=..."),
        (W, "Token authentication is disabled for this Ray cluster. Anyone ..."),
    ) == ["Token authentication is disabled for this Ray cluster. Anyone ..."]
    assert emitted("DeepSpeed", (W, "Setting accelerator to CPU. If you have GPU ...")) == []


def test_gpu_keeps_deepspeed_cpu_fallback_warning(clean):
    logs.quiet_third_party("gpu")
    msg = "Setting accelerator to CPU. If you have GPU ..."
    assert emitted("DeepSpeed", (logging.WARNING, msg)) == [msg]


def test_quiet_is_idempotent_and_lowers_chatty_loggers(clean):
    logging.getLogger("ray").setLevel(logging.INFO)
    logging.getLogger("filelock").setLevel(logging.ERROR)
    logs.quiet_third_party()
    counts = {n: len(logging.getLogger(n).filters) for n in TOUCHED}
    n_warnings = len(warnings.filters)
    logs.quiet_third_party()
    assert {n: len(logging.getLogger(n).filters) for n in TOUCHED} == counts
    assert len(warnings.filters) == n_warnings
    assert logging.getLogger(LAYERWISE).filters.count(drop_filter()) == 1
    assert logging.getLogger("ray").level == logging.WARNING
    assert logging.getLogger("vllm").level == logging.WARNING
    assert logging.getLogger("filelock").level == logging.ERROR  # never made chattier


def test_vllm_level_from_env_is_respected(clean, monkeypatch):
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "DEBUG")
    assert logs.quiet_third_party()["VLLM_LOGGING_LEVEL"] == "DEBUG"
    assert logging.getLogger("vllm").level == logging.DEBUG


def test_log_all_turns_everything_off(clean, monkeypatch):
    monkeypatch.setenv(logs.ALL_ENV, "1")
    assert logs.quiet_third_party() == {logs.ALL_ENV: "1"}
    assert drop_filter() not in logging.getLogger(LAYERWISE).filters


def test_expected_python_warnings_are_dropped_others_kept(clean):
    warnings.simplefilter("always")
    logs.quiet_third_party()
    with warnings.catch_warnings(record=True) as caught:
        for module in ("vllm.triton_utils.dispatcher", "cpe.trainer.driver"):
            warnings.warn_explicit(
                "`torch.distributed.reduce_op` is deprecated, please use ...",
                FutureWarning,
                "f.py",
                1,
                module=module,
            )
        warnings.warn_explicit(
            "`torch.distributed.all_gather_into_tensor` is deprecated. Please use ...",
            FutureWarning,
            "c10d_logger.py",
            83,
            module="torch.distributed.c10d_logger",
        )
        warnings.warn_explicit("something else", FutureWarning, "f.py", 2, module="vllm.x")
    assert [(w.filename, w.lineno) for w in caught] == [("f.py", 1), ("f.py", 2)]


CPU_NOTE = """\
cpe: expected third-party warnings are hidden (CPE_LOG_ALL=1 shows all of them).
  Harmless on CPU: 'DeepSpeed ...shm_comm_op built successfully' (per learner),
  vLLM's 'NUMA binding: Using MEMBIND policy' (per engine); vLLM runs without
  tcmalloc/iomp preloaded (slower, not wrong).
  Ray merges identical actor lines into '[repeated Nx across cluster]'."""


def test_startup_note():
    assert logs.startup_note("cpu") == CPU_NOTE
    assert logs.startup_note("gpu") == (
        "cpe: expected third-party warnings are hidden (CPE_LOG_ALL=1 shows all of them).\n"
        "  Ray merges identical actor lines into '[repeated Nx across cluster]'."
    )


def test_explain_once_prints_once(monkeypatch):
    monkeypatch.delenv(logs.ALL_ENV, raising=False)
    monkeypatch.setattr(logs, "_explained", False)
    out = io.StringIO()
    assert logs.explain_once("cpu", file=out)
    assert not logs.explain_once("cpu", file=out)
    assert out.getvalue() == CPU_NOTE + "\n"


FULL = {
    "original/reward_mean": 0.4137,
    "edit/reward_mean": 0.55,
    "original/length_tokens": 86.75,
    "grm/invalid_rate": 0.0,
    "time/generate": 4.12,
    "time/critique": 2.0,
    "time/edit": 3.94,
    "time/score": 1.2,
    "time/logprob": 0.61,
    "time/advantage": 0.02,
    "time/update": 6.2,
    "time/sync": 0.44,
    "epoch": 0,
}


def test_step_line_full():
    assert logs.step_line(3, 10, FULL) == (
        "step 3/10  reward 0.41 (edit 0.55)  len 87  invalid 0.0%  "
        "gen 4.1s crit 2.0s edit 3.9s score 1.2s lp 0.6s upd 6.2s sync 0.4s"
    )


def test_step_line_skips_missing_and_non_finite():
    metrics = {
        "original/reward_mean": 3.0,
        "edit/reward_mean": math.nan,
        "grm/invalid_rate": 0.125,
        "time/generate": 13.34,
        "time/critique": None,
        "time/checkpoint": 2.04,
        "time/other": 0.31,
        "time/step": 15.69,
    }
    assert logs.step_line(1, 2, metrics) == (
        "step 1/2  reward 3.00  invalid 12.5%  gen 13.3s ckpt 2.0s other 0.3s total 15.7s"
    )
    assert logs.step_line(1, 2, {"edit/reward_mean": 0.5}) == "step 1/2  edit reward 0.50"
    assert logs.step_line(7, 7, {}) == "step 7/7"


def test_interrupted_message():
    overrides = ["experiment=tiny_cpu", "logging.run_dir=/tmp/r", "trainer.resume=never", "a=b c"]
    assert logs.interrupted_message("/tmp/r", "/tmp/r/checkpoints/step_000002", overrides) == (
        "interrupted; last checkpoint /tmp/r/checkpoints/step_000002; resume with: "
        "python -m cpe.train experiment=tiny_cpu 'a=b c' logging.run_dir=/tmp/r"
    )
    assert logs.interrupted_message("runs/my run", None) == (
        "interrupted before the first checkpoint; this starts over: "
        "python -m cpe.train 'logging.run_dir=runs/my run'"
    )


class FakeRayTaskError(Exception):
    """Duck-types ray.exceptions.RayTaskError: a multi-line str, .cause and .proctitle."""

    def __init__(self, cause):
        super().__init__("ray::PolicyWorker.train() (pid=1, ip=x)\n  File ...\nRuntimeError: boom")
        self.cause, self.proctitle = cause, "ray::PolicyWorker.train"


def test_error_banner():
    assert logs.error_banner(RuntimeError("weight update left 3 parameters\nunchanged")) == (
        "cpe FAILED: RuntimeError: weight update left 3 parameters  (full traceback above)"
    )
    assert logs.error_banner(KeyError(), traceback_at="in runs/x/train.log") == (
        "cpe FAILED: KeyError  (full traceback in runs/x/train.log)"
    )
    assert logs.error_banner(FakeRayTaskError(ValueError("nan loss"))) == (
        "cpe FAILED in ray::PolicyWorker.train: ValueError: nan loss  (full traceback above)"
    )
    long = logs.error_banner(ValueError("x" * 300))
    assert long == f"cpe FAILED: ValueError: {'x' * 197}...  (full traceback above)"
