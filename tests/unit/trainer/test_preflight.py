import json
import subprocess
import sys
import time

import pytest

from cpe.compose import load_config, one_line_error
from cpe.data import DataError
from cpe.trainer.preflight import check_prompt_lengths, policy_prompt_lengths, prepare
from cpe.validate import ConfigError


def _cfg(tmp_path, *overrides):
    return load_config(["experiment=tiny_cpu", f"logging.run_dir={tmp_path / 'run'}", *overrides])


def test_bad_training_file_is_reported_before_anything_starts(tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text(
        '{"id": "a", "question": "q", "persona": {"x": 1}}\n{"id": "b", "question": "", "persona": {}}\n'
    )
    with pytest.raises(DataError) as info:
        prepare(_cfg(tmp_path, "data=jsonl", f"data.train_path={bad}"))
    assert f"{bad}:2: field 'question'" in str(info.value)


def test_existing_run_is_never_overwritten(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(ValueError, match="already holds a run"):
        prepare(_cfg(tmp_path, "trainer.resume=never"))
    assert prepare(_cfg(tmp_path, "trainer.resume=auto"))  # resuming it is fine


def test_a_checkpoint_cpe_did_not_write_stops_the_start_before_ray(tmp_path, capsys):
    from cpe.train import checked_start

    step = tmp_path / "run" / "checkpoints" / "step_000001"
    (step / "policy_state").mkdir(parents=True)
    (step / "policy_state" / "mp_rank_00_model_states.pt").write_bytes(b"not cpe's")
    (step / "driver.json").write_text('{"step": 1}')
    (step / "COMPLETE").write_text("")
    cfg = _cfg(tmp_path, "trainer.resume=auto")
    with pytest.raises(SystemExit) as info:
        checked_start(cfg)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {step} has no MANIFEST.json") and err.count("\n") == 1
    assert (
        prepare(
            _cfg(tmp_path, "trainer.resume=never", "logging.run_dir=" + str(tmp_path / "new"))
        ).resume
        is None
    )


def test_missing_model_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.policy.path='/nowhere'"):
        prepare(_cfg(tmp_path, "model.policy.path=/nowhere"))


def test_cli_exits_2_with_one_line(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cpe.train",
            "experiment=tiny_cpu",
            "algorithm.edit_ratio=3",
            f"logging.run_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert (
        out.stderr.strip().splitlines()[-1]
        == "config error: algorithm.edit_ratio: 3.0 must be in [0.0, 1.0]"
    )


def _write_records(path, questions):
    rows = [
        json.dumps({"id": rid, "question": q, "persona": {"job": "nurse"}})
        for rid, q in questions.items()
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_every_too_long_prompt_is_found_before_anything_starts(tmp_path):
    long = "Please explain every step of planning a cheap weekend trip by train. " * 40
    questions = {f"short-{i}": "How do I sleep better?" for i in range(3)}
    questions.update({f"long-{i}": long + str(i) for i in range(5)})
    data = _write_records(tmp_path / "train.jsonl", questions)
    ok = _cfg(tmp_path, "data=jsonl", f"data.train_path={data}", "rollout.max_prompt_tokens=100000")
    lengths = dict(zip(questions, policy_prompt_lengths(ok, prepare(ok).train), strict=True))
    limit = max(lengths["short-0"], lengths["short-1"], lengths["short-2"])
    cfg = _cfg(
        tmp_path, "data=jsonl", f"data.train_path={data}", f"rollout.max_prompt_tokens={limit}"
    )
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    listed = ", ".join(f"record 'long-{i}' ({lengths[f'long-{i}']} tokens)" for i in range(3))
    assert one_line_error(info.value) == (
        f"rollout.max_prompt_tokens: 5 of 8 policy prompts in {data} are longer than {limit} "
        f"tokens: {listed} and 2 more; raise it to at least {max(lengths.values())} or drop "
        "those records"
    )


def test_prompt_lengths_are_the_rollouts_own(tmp_path):
    from transformers import AutoTokenizer

    from cpe.models.paths import resolve_model_path
    from cpe.prompts import PromptSet
    from cpe.trainer.makers import Prompter

    cfg = _cfg(tmp_path)
    records = prepare(cfg).train[:8]
    path = resolve_model_path(cfg.model.policy.path, cfg.model.cache_dir)
    prompter = Prompter(
        AutoTokenizer.from_pretrained(path), PromptSet.from_config(cfg.prompts), 10**6, 10**6
    )
    expected = [len(prompter.policy_ids(record)) for record in records]
    assert policy_prompt_lengths(cfg, records) == expected


def test_checking_every_bundled_prompt_is_fast(tmp_path):
    cfg = _cfg(tmp_path)
    records = prepare(cfg).train  # warm: tokenizer imported and built once
    started = time.perf_counter()
    check_prompt_lengths(cfg, records)
    assert len(records) == 271 and time.perf_counter() - started < 3.0


def test_a_persona_feedback_folder_is_a_training_source(tmp_path):
    from unit.eval.benchmark_files import write_persona_feedback

    from cpe.trainer.preflight import load_split

    root = write_persona_feedback(tmp_path / "pf")
    records = load_split(str(root), None, None, limit=3)
    assert [r.id for r in records] == ["general/easy-1", "general/easy-2", "spedific/easy-1"]
    assert records[0].persona["Name"] == "Ana Silva" and records[0].chosen == "good one"


def test_flash_attention_without_its_package_is_refused():
    from cpe.compose import load_config
    from cpe.trainer.preflight import check_attention

    cfg = load_config(["experiment=qwen2.5-7b", "learner.attn_implementation=flash_attention_2"])
    with pytest.raises(ValueError, match="needs the flash-attn package, which is not installed"):
        check_attention(cfg)
    check_attention(load_config(["experiment=qwen2.5-7b"]))  # sdpa needs nothing
