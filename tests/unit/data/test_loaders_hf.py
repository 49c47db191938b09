"""load_records on folders written by datasets' save_to_disk."""

from __future__ import annotations

import json

import pytest

from cpe.data import DataError, Record, load_records

PERSONA = {"age": 34, "interests": ["chess"]}


def _load_error(*args, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_records(*args, **kwargs)
    return info.value


@pytest.fixture(scope="module")
def hf_folders(tmp_path_factory):
    datasets = pytest.importorskip("datasets")
    root = tmp_path_factory.mktemp("hf")
    good = [
        {"id": "h1", "persona": json.dumps(PERSONA), "question": "q1", "category": "c"},
        {"id": "h2", "persona": json.dumps({"age": 3}), "question": "q2", "category": "d"},
    ]
    bad = [
        {"id": "h1", "persona": json.dumps(PERSONA), "question": "q1"},
        {"id": "h2", "persona": "7", "question": " "},
    ]
    datasets.Dataset.from_list(good).save_to_disk(str(root / "good"))
    datasets.Dataset.from_list(bad).save_to_disk(str(root / "bad"))
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(good), "test": datasets.Dataset.from_list(good[:1])}
    ).save_to_disk(str(root / "two_splits"))
    datasets.DatasetDict({"train": datasets.Dataset.from_list(good)}).save_to_disk(
        str(root / "one_split")
    )
    return root


def test_hf_dataset_folder_loads(hf_folders):
    records = load_records(hf_folders / "good")
    assert records == [
        Record("h1", PERSONA, "q1", meta={"category": "c"}),
        Record("h2", {"age": 3}, "q2", meta={"category": "d"}),
    ]


def test_hf_dataset_reports_row_numbers(hf_folders):
    path = hf_folders / "bad"
    err = _load_error(path)
    text = str(err)
    assert len(err.errors) == 2
    assert f"{path}:2: field 'persona': must be a JSON object, got a string holding integer" in text
    assert f"{path}:2: field 'question':" in text


def test_hf_dataset_dict_needs_a_split_when_it_has_several(hf_folders):
    path = hf_folders / "two_splits"
    assert str(_load_error(path)) == (
        f"{path}: the dataset has several splits ('train', 'test'); pass split="
    )
    assert [r.id for r in load_records(path, split="test")] == ["h1"]
    assert "no split 'dev' in the dataset; it has 'train', 'test'" in str(
        _load_error(path, split="dev")
    )


def test_hf_dataset_dict_with_one_split_needs_no_split(hf_folders):
    assert len(load_records(hf_folders / "one_split")) == 2


def test_folder_that_is_not_a_dataset_names_the_path(tmp_path):
    pytest.importorskip("datasets")
    path = tmp_path / "plain_folder"
    path.mkdir()
    assert str(_load_error(path)).startswith(f"{path}: cannot load a saved Hugging Face dataset")
