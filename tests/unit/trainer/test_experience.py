import torch

from cpe.data.records import Record
from cpe.trainer.experience import (
    Experience,
    Sample,
    behaviour_logp_for,
    edit_prompt_tensors,
    training_tensors,
)

REC = Record(id="r1", persona={"age": 30}, question="q?")


def _sample(prompt, response, reward, **kw):
    return Sample(
        group_id=0,
        record=REC,
        prompt_ids=prompt,
        response_ids=response,
        text="t",
        reward=reward,
        **kw,
    )


def test_training_tensors_layout_and_invalid_rows():
    original = _sample([1, 2, 3], [7, 8], 1.5, pair_id=0)
    invalid = _sample([1, 2, 3], [9], None, pair_id=1)  # GRM failed: stays, masked out
    edit = _sample(
        [1, 2, 3], [5, 6, 4], 2.0, is_edit=True, pair_id=0, edit_prompt_ids=[11, 12, 13, 14, 15]
    )
    t = training_tensors([original, invalid, edit], pad_id=0)
    assert t.input_ids.tolist() == [[1, 2, 3, 7, 8, 0], [1, 2, 3, 9, 0, 0], [1, 2, 3, 5, 6, 4]]
    assert t.attention_mask.tolist() == [
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1],
    ]
    assert t.response_mask.tolist() == [
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 1],
    ]
    assert t.rewards.tolist() == [
        1.5,
        0.0,
        2.0,
    ]  # the invalid row's 0 never reaches a loss: mask is 0
    assert t.is_edit.tolist() == [False, False, True]
    assert t.pair_ids.tolist() == [0, 1, 0]


def test_mu_moves_from_the_edit_prompt_layout_to_the_original_prompt_layout():
    original = _sample([1, 2, 3], [7, 8], 1.0, pair_id=0)
    edit = _sample(
        [1, 2, 3], [5, 6, 4], 2.0, is_edit=True, pair_id=0, edit_prompt_ids=[11, 12, 13, 14, 15]
    )
    samples = [original, edit]
    under_edit = edit_prompt_tensors([edit], pad_id=0)
    assert under_edit.input_ids.tolist() == [[11, 12, 13, 14, 15, 5, 6, 4]]
    # log mu of the edit's three tokens sits at positions 5, 6, 7 of the edit-prompt layout
    mu_edit_layout = torch.tensor([[0, 0, 0, 0, 0, -0.5, -1.5, -2.5]])
    mu = behaviour_logp_for(samples, mu_edit_layout, rows=[1], dst_shape=(2, 6))
    # ... and must land on positions 3, 4, 5 of the original-prompt layout of row 1
    assert mu.tolist() == [[0, 0, 0, 0, 0, 0], [0, 0, 0, -0.5, -1.5, -2.5]]


def test_batch_samples_are_all_originals_then_selected_edits():
    originals = [_sample([1], [2], 1.0, pair_id=i) for i in range(2)]
    edits = [_sample([1], [3], 0.5, is_edit=True, pair_id=i, edit_prompt_ids=[4]) for i in range(2)]
    exp = Experience(originals, edits, selected=[1])
    assert exp.batch_samples == originals + [edits[1]]
    r_o, r_e = exp.reward_tensors()
    assert r_o.tolist() == [1.0, 1.0] and r_e.tolist() == [0.5, 0.5]
