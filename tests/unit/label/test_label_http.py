"""``python -m cpe.label`` end to end against a real local chat-completions server: a
teacher whose scores depend on the answer, garbage outputs, transient 500/429s, an
endpoint that fails every request, and a labeller killed mid-run that continues without
asking again for any answer the server had replied to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from unit.label.label_fakes import answer_in, pair, read_jsonl, teacher_output, write_jsonl
from unit.reward.grm_fakes import Response, failure

from cpe.data import load_records
from cpe.data.split import is_held_out
from cpe.label.__main__ import main
from cpe.prompts import DEFAULT, grm_messages

REPO = Path(__file__).resolve().parents[3]
PAIRS = [
    pair("p1", "p1 fine [score 4]", "p1 poor [score -2]"),
    pair("p2", "p2 weak [score 0]", "p2 strong [score 3]"),  # the teacher disagrees
    pair("p3", "p3 GARBAGE", "p3 ok [score 1]"),  # one side never parses
    pair("p4", "p4 even [score 2]", "p4 level [score 2]"),  # a tie
    *[pair(f"q{i}", f"q{i} good [score 3]", f"q{i} bad [score -1]") for i in range(6)],
]
SHARE = 0.3


class Teacher:
    """Answers like the fake teacher; the first request fails with 500, the second with 429.
    Records the answers it sent a reply for (``replied``)."""

    def __init__(self):
        self.asked: list[str] = []
        self.replied: list[str] = []
        self.stall_from: int | None = None  # requests from this number on never return
        self.broken = False  # every request fails with 500
        self.lock = threading.Lock()

    def __call__(self, n: int, body: dict) -> Response:
        answer = answer_in(body)
        with self.lock:
            self.asked.append(answer)
        if self.broken:
            return failure(500)
        if self.stall_from is not None and n >= self.stall_from:
            return Response(delay_s=3600)
        if n == 1:
            return failure(500)
        if n == 2:
            return failure(429)
        with self.lock:
            self.replied.append(answer)
        return Response(content=teacher_output(answer))


def _args(server, pairs_path: Path, out: Path, *extra: str) -> list[str]:
    return [
        "grm=openai",
        "cluster.pools.grm.engines=0",
        f"grm.openai.base_url={server.base_url}",
        "grm.retries=1",
        "grm.backoff_s=0",
        f"label.pairs_path={pairs_path}",
        f"label.output_dir={out}",
        f"label.eval_share={SHARE}",
        "label.chunk=3",
        "logging.progress=false",
        *extra,
    ]


def _answer(pair_id: str, side: str) -> str:
    return next(p[side] for p in PAIRS if p["id"] == pair_id)


def test_labels_pairs_over_http(chat_server, tmp_path, capsys):
    teacher = Teacher()
    server = chat_server(teacher)
    pairs_path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    out = tmp_path / "out"
    assert main(_args(server, pairs_path, out, "label.preference=teacher")) == 0
    # 20 answers, the 500 and the 429 retried by the client, the garbage re-asked once.
    assert server.count == 20 + 2 + 1
    assert sorted(set(teacher.asked)) == sorted(p[s] for p in PAIRS for s in ("chosen", "rejected"))

    labels = read_jsonl(out / "labels.jsonl")
    assert len(labels) == 20 and len({(r["pair_id"], r["side"]) for r in labels}) == 20
    garbage = next(r for r in labels if r["pair_id"] == "p3" and r["side"] == "chosen")
    assert not garbage["valid"] and garbage["reward"] is None and garbage["attempts"] == 2
    assert garbage["error"] == "missing <scores> block"
    p1 = next(r for r in labels if r["pair_id"] == "p1" and r["side"] == "chosen")
    assert (p1["helpfulness"], p1["personalization"], p1["naturalness"]) == (4, 4, 4)
    assert p1["reward"] == pytest.approx(4.0) and p1["output"] == teacher_output(
        _answer("p1", "chosen")
    )

    records = {r.id: r for r in load_records(pairs_path)}
    valid = [(r["pair_id"], r["side"]) for r in labels if r["valid"]]
    for name, held in (("grm_sft.jsonl", False), ("grm_sft_eval.jsonl", True)):
        rows = read_jsonl(out / name)
        expected = [f"{i}:{s}" for i, s in valid if is_held_out(i, SHARE) == held]
        assert sorted(r["id"] for r in rows) == sorted(expected)
        for row in rows:
            pair_id, side = row["id"].split(":")
            answer = _answer(pair_id, side)
            assert row["messages"] == grm_messages(records[pair_id], answer, DEFAULT)
            assert row["response"] == teacher_output(answer)

    kept = {"p1", "p2", *(f"q{i}" for i in range(6))}  # p3: invalid side; p4: tie
    written = {}
    for name, held in (("pairs.jsonl", False), ("pairs_eval.jsonl", True)):
        got = load_records(out / name) if (out / name).stat().st_size else []
        assert {r.id for r in got} == {i for i in kept if is_held_out(i, SHARE) == held}
        written.update({r.id: r for r in got})
    assert (written["p2"].chosen, written["p2"].rejected) == (
        "p2 strong [score 3]",
        "p2 weak [score 0]",
    )
    assert written["p2"].meta == {"chosen_reward": 3.0, "rejected_reward": 0.0}
    assert written["p1"].persona == records["p1"].persona
    assert written["p1"].question == records["p1"].question

    summary = _json(out / "summary.json")
    assert summary["pairs_read"] == 10 and summary["answers_labelled"] == 20
    assert summary["answers_reused"] == 0 and summary["invalid_answers"] == 1
    assert summary["first_errors"] == ["p3:chosen: missing <scores> block"]
    assert (summary["dropped_equal_rewards"], summary["dropped_invalid_side"]) == (1, 1)
    assert summary["teacher_agreement"] is None
    split_sizes = {k: (v["grm_sft"], v["pairs"]) for k, v in summary["written"].items()}
    assert sum(g for g, _ in split_sizes.values()) == 19
    assert sum(p for _, p in split_sizes.values()) == 8
    assert str(out) in capsys.readouterr().out

    # Same folder again: everything is reused, no request is sent.
    before = server.count
    assert main(_args(server, pairs_path, out, "label.preference=teacher")) == 0
    assert server.count == before
    assert _json(out / "summary.json")["answers_reused"] == 20
    assert len(read_jsonl(out / "labels.jsonl")) == 20


def test_dataset_preference_with_the_consistency_filter(chat_server, tmp_path):
    server = chat_server(Teacher())
    pairs_path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    out = tmp_path / "out"
    args = _args(server, pairs_path, out, "label.consistency_filter=true", "label.eval_share=0")
    assert main(args) == 0
    kept = [r.id for r in load_records(out / "pairs.jsonl")]
    assert kept == ["p1", "p4", *(f"q{i}" for i in range(6))]  # p2 contradicts the teacher
    assert (out / "pairs_eval.jsonl").read_text() == ""
    summary = _json(out / "summary.json")
    assert summary["dropped_consistency_filter"] == 1 and summary["dropped_equal_rewards"] == 0
    # Of 9 pairs with two valid labels the teacher prefers the chosen answer in 7.
    assert summary["teacher_agreement"] == pytest.approx(7 / 9)


def test_a_changed_teacher_is_refused_before_any_request(chat_server, tmp_path, capsys):
    server = chat_server(Teacher())
    pairs_path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:1])
    out = tmp_path / "out"
    assert main(_args(server, pairs_path, out)) == 0
    count = server.count
    assert main(_args(server, pairs_path, out, "grm.openai.model=other")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "grm.openai.model='grm' (now 'other')" in err
    assert server.count == count


def test_missing_answers_are_an_error_naming_the_records(tmp_path, capsys):
    rows = [pair("p1", "a", "b"), {"id": "bare", "persona": {"a": 1}, "question": "Q?"}]
    pairs_path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    args = ["grm=openai", "cluster.pools.grm.engines=0", f"label.pairs_path={pairs_path}"]
    assert main([*args, f"label.output_dir={tmp_path / 'o'}"]) == 2
    err = capsys.readouterr().err
    assert "label.pairs_path=" in err and "'bare'" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "label.chunk=0"]) == 2
    assert capsys.readouterr().err.startswith("config error: label.chunk: 0 must be > 0")


def _json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def _wait(condition, proc, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, f"labeller exited early with {proc.returncode}"
        assert time.monotonic() < deadline, "timed out waiting for the labeller"
        time.sleep(0.05)


def test_a_killed_labeller_never_asks_again_for_an_answered_request(chat_server, tmp_path):
    teacher = Teacher()
    # Requests 1-2 fail (500, 429) and are retried by the client; chunk 1 (4 answers) is
    # requests 1-6, chunk 2 is 7-10, and request 10 never returns.
    teacher.stall_from = 10
    server = chat_server(teacher)
    pairs_path = write_jsonl(tmp_path / "pairs.jsonl", [p for p in PAIRS if p["id"] != "p3"])
    out = tmp_path / "out"
    args = _args(server, pairs_path, out, "label.chunk=4", "grm.openai.concurrency=2")
    labels_path = out / "labels.jsonl"

    def lines() -> int:
        return len(labels_path.read_text().splitlines()) if labels_path.exists() else 0

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with (tmp_path / "stderr.txt").open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cpe.label", *args], cwd=tmp_path, env=env, stderr=stderr
        )
        try:
            # Killed once every reply the server sent is durable, while chunk 2 waits
            # for its stalled request (a chunk-wise append would never get here).
            _wait(lambda: server.count >= 10 and lines() >= len(teacher.replied), proc)
            time.sleep(0.3)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    replied = set(teacher.replied)
    assert len(replied) == 7 and server.count == 10
    durable = read_jsonl(labels_path)
    assert {_answer(r["pair_id"], r["side"]) for r in durable} == replied
    stalled = teacher.asked[-1]
    teacher.asked.clear()
    teacher.stall_from = None

    assert main(args) == 0
    labels = read_jsonl(labels_path)
    keys = [(r["pair_id"], r["side"]) for r in labels]
    assert len(keys) == 18 and len(set(keys)) == 18  # every answer exactly once
    everything = {p[s] for p in PAIRS if p["id"] != "p3" for s in ("chosen", "rejected")}
    # The second run asks only for what had no reply: the stalled request and the rest.
    assert not replied & set(teacher.asked)
    assert sorted(teacher.asked) == sorted(everything - replied) and stalled in teacher.asked
    assert _json(out / "summary.json")["answers_reused"] == 7


def test_transport_failures_are_not_stored_and_asked_again(chat_server, tmp_path, capsys):
    teacher = Teacher()
    teacher.broken = True
    server = chat_server(teacher)
    pairs_path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS[:2])
    out = tmp_path / "out"
    args = _args(server, pairs_path, out, "grm.openai.max_retries=1")
    assert main(args) == 1
    assert server.count == 4 * 2  # the client's retry; the labeller never re-asks them
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("incomplete: 4 answers got no reply from the teacher")
    assert f"label.output_dir={out}" in err[-1]
    assert not (out / "labels.jsonl").exists()
    summary = _json(out / "summary.json")
    assert summary["transport_failures"] == 4 and summary["answers_labelled"] == 0
    assert "HTTP 500" in summary["first_transport_errors"][0]
    assert summary["dropped_unlabelled"] == 2 and summary["invalid_answers"] == 0

    teacher.broken = False
    assert main(args) == 0
    assert len(read_jsonl(out / "labels.jsonl")) == 4
    summary = _json(out / "summary.json")
    assert summary["transport_failures"] == 0 and summary["answers_labelled"] == 4
    assert summary["dropped_unlabelled"] == 0 and summary["answers_reused"] == 0
