"""``label.sample_answers``: two answers per record from the policy's engine, kept in
answers.jsonl, ordered by the teacher (here ``grm=python``; the engine host is faked)."""

from __future__ import annotations

import json

import pytest
from unit.label.label_fakes import read_jsonl

import cpe.eval.host
from cpe.data import load_records
from cpe.label.__main__ import main
from cpe.reward.factory import build_grm
from cpe.types import Generation


class SamplingEngine:
    """Answer pair c: '[score c % 3]' vs '[score 2]', so pairs swap, swap, tie, swap."""

    def __init__(self):
        self.specs = []
        self.prompts = 0

    def generate(self, prompt_ids, spec):
        self.specs.append(spec)
        out = []
        for ids in prompt_ids:
            c = self.prompts
            self.prompts += 1
            texts = [f"s{c} first [score {c % 3}]", f"s{c} second [score 2]"][: spec.n]
            out.append([Generation(prompt_ids=ids, token_ids=[1, 2], text=t) for t in texts])
        return out


@pytest.fixture
def fake_host(monkeypatch, tokenizer):
    engine = SamplingEngine()
    asked = []

    class FakeHost:
        def __init__(self, cfg):
            self.cfg = cfg

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def policy(self, model):
            asked.append(model)
            return engine, tokenizer

        def grm(self, prompts):
            return build_grm(self.cfg.grm, prompts=prompts)

    monkeypatch.setattr(cpe.eval.host, "EngineHost", FakeHost)
    return engine, asked


@pytest.fixture(scope="module")
def tokenizer():
    from cpe.models.tiny import train_tokenizer

    return train_tokenizer()


def _args(out, *extra):
    return [
        "grm=python",
        "grm.python_function=unit.label.label_fakes:python_teacher",
        "cluster.pools.grm.engines=0",
        "label.pairs_path=bundled:train",
        "label.sample_answers=true",
        "label.preference=teacher",
        "label.max_pairs=4",
        "label.eval_share=0",
        f"label.output_dir={out}",
        "logging.progress=false",
        "rollout.temperature=0.7",
        "rollout.seed=5",
        *extra,
    ]


def test_sampled_pairs_are_ordered_by_the_teacher_and_reused(fake_host, tmp_path):
    engine, asked = fake_host
    out = tmp_path / "out"
    assert main(_args(out)) == 0
    assert asked == ["fixture:smollm2"]  # model.policy.path of the default config
    spec = engine.specs[0]
    assert (spec.n, spec.temperature, spec.seed) == (2, 0.7, 5)
    answers = read_jsonl(out / "answers.jsonl")
    assert [len(r["answers"]) for r in answers] == [2, 2, 2, 2]

    pairs = load_records(out / "pairs.jsonl")
    assert len(pairs) == 3  # the third pair is a tie
    assert all(p.chosen.endswith("second [score 2]") for p in pairs)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs_read"] == 4 and summary["answers_labelled"] == 8
    assert summary["dropped_equal_rewards"] == 1
    assert len(read_jsonl(out / "grm_sft.jsonl")) == 8

    # A re-run samples nothing and labels nothing.
    assert main(_args(out)) == 0
    assert engine.prompts == 4 and len(asked) == 1
    assert json.loads((out / "summary.json").read_text())["answers_reused"] == 8


def test_answers_sampled_otherwise_are_refused(fake_host, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_args(out)) == 0
    capsys.readouterr()
    assert main(_args(out, "rollout.seed=6")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "seed=5" in err
