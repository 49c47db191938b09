"""PPOMaker / CPEMaker over a fake rollout pool and a REAL GRM (GRMScorer + PythonBackend
with a rule function defined here): generation calls, edit re-attachment, scoring,
selection counts, per-step seeds and the selection RNG state."""

from __future__ import annotations

import json
import re

import pytest
from unit.fakes import CHARS, FakeRollout, make_records

from cpe.prompts import DEFAULT
from cpe.reward import GRMScorer, PythonBackend, format_grm_output
from cpe.trainer.makers import CPEMaker, MakerSettings, PPOMaker, Prompter
from cpe.trainer.timing import PhaseTimer

GRM_CALLS: list[str] = []


def apple_rule(persona, question, answer):
    """A real GRM rule: every dimension scores the number of "apple"s (at most 5).

    "mute" in the answer: an empty critique (the critique is invalid, the scores valid);
    "garbage": no scores block (the critique is valid text, the score is invalid)."""
    GRM_CALLS.append(answer)
    if "garbage" in answer:
        return "I cannot judge this."
    count = min(answer.count("apple"), 5)
    critique = "" if "mute" in answer else f"Add apples (has {count})."
    return format_grm_output(critique, [count, count, count])


@pytest.fixture(autouse=True)
def clear_grm_calls():
    GRM_CALLS.clear()


QUESTION = re.compile(r"What is item (\d+)\?")
DRAFT = re.compile(r"<draft_answer>\n(.*?)\n</draft_answer>", re.S)

# group -> the n=2 original answers. Rewards: 1, 2 | 0, invalid | 3, 1.
# Critiques: valid for all but "mute apple" (pair 5), so pairs 0..4 get an edit.
ORIGINALS = {
    0: ["apple", "apple apple"],
    1: ["none", "garbage apple"],
    2: ["apple apple apple", "mute apple"],
}
ORIGINAL_REWARDS = [1.0, 2.0, 0.0, None, 3.0, 1.0]


def plus_one_apple(draft: str, group: int) -> str:
    return f"{draft} apple"


def scripted(originals, edit=plus_one_apple):
    """Originals from the table by (group, sample); an edit prompt (it holds the draft)
    gets ``edit(draft, group)``: the reply shows which draft it was made from."""

    def respond(prompt: str, index: int) -> str:
        group = int(QUESTION.search(prompt).group(1))
        draft = DRAFT.search(prompt)
        if draft:
            return edit(draft.group(1), group)
        return originals[group][index]

    return respond


def prompter() -> Prompter:
    return Prompter(CHARS, DEFAULT, max_prompt_tokens=100_000, max_edit_prompt_tokens=100_000)


def build(
    cls,
    originals=None,
    edit=plus_one_apple,
    *,
    n=2,
    ratio=0.5,
    divisor=2,
    selection="random",
    seed=0,
    mode="two_call",
):
    rollout = FakeRollout(scripted(originals or ORIGINALS, edit))
    grm = GRMScorer(PythonBackend(apple_rule), mode=mode, retries=0)
    settings = MakerSettings(
        n=n,
        temperature=0.7,
        top_p=0.9,
        max_new_tokens=12,
        edit_max_new_tokens=20,
        selection=selection,
        edit_ratio=ratio,
        divisor=divisor,
        seed=seed,
    )
    return cls(rollout, grm, prompter(), settings, PhaseTimer()), rollout


def rewards(samples):
    return [None if s.reward is None else pytest.approx(s.reward) for s in samples]


def rewards_of(values):
    return [None if v is None else pytest.approx(v) for v in values]


def test_ppo_makes_b_times_n_scored_originals_and_no_edits():
    records = make_records(3)
    maker, rollout = build(PPOMaker)
    exp = maker.make(records, step=1)

    assert len(rollout.calls) == 1
    call = rollout.calls[0]
    policy_ids = [prompter().policy_ids(r) for r in records]
    assert call.prompts == policy_ids
    assert (call.spec.n, call.spec.max_tokens, call.spec.temperature, call.spec.top_p) == (
        2,
        12,
        0.7,
        0.9,
    )
    assert "What is item 1?" in CHARS.decode(call.prompts[1])

    assert len(exp.originals) == 6 and exp.edits == [] and exp.selected == []
    assert [s.group_id for s in exp.originals] == [0, 0, 1, 1, 2, 2]
    assert [s.pair_id for s in exp.originals] == [0, 1, 2, 3, 4, 5]
    assert [s.text for s in exp.originals] == [t for g in range(3) for t in ORIGINALS[g]]
    assert [s.prompt_ids for s in exp.originals] == [policy_ids[g] for g in (0, 0, 1, 1, 2, 2)]
    assert exp.originals[1].response_ids == CHARS.encode("apple apple")
    assert rewards(exp.originals) == rewards_of(ORIGINAL_REWARDS)
    assert exp.originals[4].scores == (3, 3, 3) and exp.originals[3].scores is None
    assert not any(s.is_edit or s.critique for s in exp.originals)
    assert GRM_CALLS == [t for g in range(3) for t in ORIGINALS[g]]  # one score call each
    assert exp.grm_stats["grm/results"] == 6 and exp.grm_stats["grm/invalid"] == 1


def test_cpe_edits_are_made_from_valid_critiques_and_trained_under_the_original_prompt():
    records = make_records(3)
    maker, rollout = build(CPEMaker)
    exp = maker.make(records, step=1)
    p = prompter()

    assert len(rollout.calls) == 2  # originals, then the edits
    first, second = rollout.calls
    assert first.spec.n == 2 and first.spec.max_tokens == 12
    assert second.spec.n == 1 and second.spec.max_tokens == 20
    assert first.spec.seed != second.spec.seed

    originals = exp.originals
    assert [s.critique for s in originals] == [
        "Add apples (has 1).",
        "Add apples (has 2).",
        "Add apples (has 0).",
        "I cannot judge this.",  # score invalid, critique usable: still edited
        "Add apples (has 3).",
        None,  # "mute": empty critique -> no edit
    ]
    edited = [0, 1, 2, 3, 4]
    assert second.prompts == [
        p.edit_ids(records[originals[i].group_id], originals[i].text, originals[i].critique)
        for i in edited
    ]

    edits = exp.edits
    assert [e.pair_id for e in edits] == edited
    assert [e.group_id for e in edits] == [0, 0, 1, 1, 2]
    assert all(e.is_edit for e in edits)
    assert [e.prompt_ids for e in edits] == [originals[i].prompt_ids for i in edited]
    assert [e.edit_prompt_ids for e in edits] == second.prompts
    assert all(e.edit_prompt_ids != e.prompt_ids for e in edits)
    assert [e.text for e in edits] == [
        "apple apple",
        "apple apple apple",
        "none apple",
        "garbage apple apple",
        "apple apple apple apple",
    ]
    assert [e.response_ids for e in edits] == [CHARS.encode(e.text) for e in edits]
    assert rewards(originals) == rewards_of(ORIGINAL_REWARDS)
    assert rewards(edits) == rewards_of([2.0, 3.0, 1.0, None, 4.0])
    # two_call: 6 critiques, then one score call over originals + edits
    assert len(GRM_CALLS) == 6 + 6 + 5

    # K = floor(0.5 * 3 * 2 / 2) * 2 = 2 random valid edits
    assert len(exp.selected) == 2
    assert exp.selected == sorted(exp.selected)
    assert set(exp.selected) <= {0, 1, 2, 4}
    assert exp.batch_samples == originals + [edits[i] for i in exp.selected]


def test_single_call_takes_original_rewards_from_the_critique_call():
    maker, _ = build(CPEMaker, mode="single_call")
    exp = maker.make(make_records(3), step=1)
    # "garbage": no scores -> invalid in single_call, so no critique and no edit either;
    # "mute": valid scores but an empty critique -> no edit
    assert [bool(s.critique) for s in exp.originals] == [True, True, True, False, True, False]
    assert [e.pair_id for e in exp.edits] == [0, 1, 2, 4]
    assert rewards(exp.originals) == rewards_of(ORIGINAL_REWARDS)
    assert rewards(exp.edits) == rewards_of([2.0, 3.0, 1.0, 4.0])
    assert len(GRM_CALLS) == 6 + 4  # the originals are not scored a second time


def garbage_for_group_2(draft: str, group: int) -> str:
    return "garbage" if group == 2 else f"{draft} apple"


@pytest.mark.parametrize(("divisor", "expected"), [(1, 3), (2, 2), (4, 0)])
def test_fewer_valid_edits_than_the_budget_round_down_to_the_divisor(divisor, expected):
    # ratio 1: K = 6 (rounded to the divisor), but only edits 0, 1, 2 are valid
    # (pair 3's and pair 4's edits are "garbage"; pair 5 has no critique).
    maker, _ = build(CPEMaker, edit=garbage_for_group_2, ratio=1.0, divisor=divisor)
    exp = maker.make(make_records(3), step=1)
    assert rewards(exp.edits) == rewards_of([2.0, 3.0, 1.0, None, None])
    assert len(exp.selected) == expected
    assert set(exp.selected) <= {0, 1, 2}


def more_apples_per_group(draft: str, group: int) -> str:
    return draft + " apple" * (group + 1)


def test_conditional_selection_picks_the_largest_gains():
    # group 2 answers "apple" / "mute apple": edit gains are 1, 1 | 2, invalid | 3.
    originals = {**ORIGINALS, 2: ["apple", "mute apple"]}
    maker, _ = build(CPEMaker, originals, more_apples_per_group, selection="conditional")
    exp = maker.make(make_records(3), step=1)
    assert rewards(exp.edits) == rewards_of([2.0, 3.0, 2.0, None, 4.0])
    # per prompt the best gain (edits 0, 2, 4), then the top K = 2 by gain: 4 (3), 2 (2)
    assert exp.selected == [2, 4]


def seeds(rollout):
    return [c.spec.seed for c in rollout.calls]


def test_sampling_seeds_differ_per_step_and_repeat_for_the_same_seed_and_step():
    records = make_records(3)
    maker, rollout = build(CPEMaker, seed=5)
    maker.make(records, step=1)
    maker.make(records, step=2)
    step1, step2 = seeds(rollout)[:2], seeds(rollout)[2:]
    assert len(set(step1 + step2)) == 4  # originals and edits, both steps: all distinct

    resumed, resumed_rollout = build(CPEMaker, seed=5)  # a fresh process resuming at step 2
    resumed.make(records, step=2)
    assert seeds(resumed_rollout) == step2

    other, other_rollout = build(CPEMaker, seed=6)
    other.make(records, step=2)
    assert not set(seeds(other_rollout)) & set(step2)


def test_state_dict_restores_the_selection_rng():
    # 4 prompts x 2 answers, every edit valid: K = 4 of 8 edits, chosen at random.
    originals = {g: ["apple", "apple apple"] for g in range(4)}
    records = make_records(4)

    def fresh():
        return build(CPEMaker, originals, ratio=0.5, divisor=1, seed=3)[0]

    first = fresh()
    first.make(records, step=1)
    state = json.loads(json.dumps(first.state_dict()))  # as a checkpoint stores it
    expected = first.make(records, step=2).selected
    assert len(expected) == 4

    resumed = fresh()
    resumed.load_state_dict(state)
    assert resumed.make(records, step=2).selected == expected
    assert resumed.generator.get_state().equal(first.generator.get_state())

    # without the state, step 2 would draw from the step-1 position of the RNG
    assert fresh().make(records, step=2).selected != expected
