"""``cpe.eval`` end to end on the tiny model with real vLLM engines: a judge behind a
real local chat-completions server, a judge on a vLLM engine, and a killed evaluation
that continues from its cache without redoing anything."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from unit.reward.grm_fakes import ChatServer, Response

from cpe.eval.runner import run_eval

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _logprob_reply(p_a: float) -> Response:
    """A chat completion whose first token's top log-probs give P(A) = p_a."""
    alternatives = [
        {"token": "A", "logprob": math.log(p_a), "bytes": None},
        {"token": "B", "logprob": math.log(1 - p_a), "bytes": None},
    ]
    first = {"token": "A", "logprob": math.log(p_a), "bytes": None, "top_logprobs": alternatives}
    choice = {
        "index": 0,
        "finish_reason": "stop",
        "message": {"role": "assistant", "content": "A"},
        "logprobs": {"content": [first]},
    }
    body = {"id": "j", "object": "chat.completion", "created": 0, "model": "judge"}
    return Response(content=None, body=json.dumps({**body, "choices": [choice]}))


def test_openai_judge_over_http_scores_both_orders(ray_session, eval_config, tmp_path):
    # The judge prefers whichever answer is shown first (pure position bias): judged
    # in both orders, every item must come out a tie exactly.
    server = ChatServer(lambda n, body: _logprob_reply(0.8)).start()
    try:
        cfg = eval_config(
            tmp_path / "ev",
            "eval.policies=[fixture:tiny]",
            "eval.max_records=6",
            "eval.judge.backend=openai",
            f"eval.judge.openai.base_url={server.base_url}",
            "eval.probe=true",
        )
        results = json.loads(run_eval(cfg).read_text())
    finally:
        server.stop()
    tiny = results["policies"]["tiny"]
    assert server.count == 6 * 2
    assert tiny["judged"] == 6 and tiny["invalid"] == 0
    assert tiny["win_rate"] == pytest.approx(50.0) and tiny["win_rate_se"] == pytest.approx(0.0)
    assert tiny["length_tokens"] > 0 and "probe_shift_tokens" in tiny
    judged = _lines(tmp_path / "ev" / "judgments" / "tiny-vs-initial.jsonl")
    assert {(r["order"], r["source"]) for r in judged} == {("pr", "logprobs"), ("rp", "logprobs")}
    answers = _lines(tmp_path / "ev" / "answers" / "tiny.jsonl")
    assert sorted({r["variant"] for r in answers}) == ["brief", "default", "detailed"]
    assert "| tiny |" in (tmp_path / "ev" / "results.md").read_text()


def test_a_killed_eval_continues_from_its_cache(ray_session, eval_config, tmp_path):
    folder = tmp_path / "ev"
    args = ["experiment=tiny_cpu", f"eval.output_dir={folder}", "eval.policies=[fixture:tiny]"]
    args += ["eval.max_records=48", "logging.progress=false"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpe.eval", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    answers = folder / "answers" / "initial.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if answers.exists() and len(answers.read_text().splitlines()) >= 16:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = answers.read_text().splitlines()
    assert 16 <= len(before) < 48, "the eval was not killed midway"

    # Continue in this process: the vLLM judge on an engine of the GRM pool.
    results = json.loads(run_eval(eval_config(folder, *args[2:4])).read_text())
    after = answers.read_text().splitlines()
    assert after[: len(before)] == before  # nothing regenerated
    assert sorted(json.loads(line)["id"] for line in after) == sorted(
        {json.loads(line)["id"] for line in after}
    )
    assert len(after) == 48
    judged = _lines(folder / "judgments" / "tiny-vs-initial.jsonl")
    assert len(judged) == 96 and {r["source"] for r in judged} == {"logprobs"}
    tiny = results["policies"]["tiny"]
    assert tiny["judged"] == 48 and tiny["invalid"] == 0
    assert 0.0 <= tiny["lc_win_rate"] <= 100.0
