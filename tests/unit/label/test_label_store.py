"""labels.jsonl read back after a kill, and the folder-settings refusal."""

from __future__ import annotations

import json

import pytest
from unit.label.label_fakes import pair, write_jsonl

from cpe.compose import load_config
from cpe.label.runner import plan_label, teacher_settings
from cpe.label.store import (
    LABELS_FILE,
    Label,
    LabelStore,
    SettingsMismatch,
    check_settings,
    save_settings,
)


def _label(pair_id: str, side: str = "chosen") -> Label:
    return Label(pair_id, side, "dig", "out", True, None, 1, 2, 3, 2.05, 1)


def test_a_torn_last_line_is_dropped_and_the_next_append_starts_clean(tmp_path):
    store = LabelStore(tmp_path)
    store.append([_label("a"), _label("a", "rejected")])
    with (tmp_path / LABELS_FILE).open("a") as fh:
        fh.write('{"pair_id": "b", "side": "cho')  # killed mid-write
    reread = LabelStore(tmp_path)
    assert sorted(reread.labels) == [("a", "chosen"), ("a", "rejected")]
    assert reread.done("a", "chosen", "dig") == _label("a")
    assert reread.done("a", "chosen", "other text") is None  # the answer changed
    assert reread.done("b", "chosen", "dig") is None
    reread.append([_label("b")])
    lines = (tmp_path / LABELS_FILE).read_text().splitlines()
    assert [json.loads(line)["pair_id"] for line in lines] == ["a", "a", "b"]
    assert sorted(LabelStore(tmp_path).labels) == [
        ("a", "chosen"),
        ("a", "rejected"),
        ("b", "chosen"),
    ]


def test_a_broken_line_inside_the_file_names_the_line(tmp_path):
    (tmp_path / LABELS_FILE).write_text('{"x": 1\n{}\n')
    with pytest.raises(ValueError, match=r"labels.jsonl:1: not a JSON line"):
        LabelStore(tmp_path)


def test_settings_mismatch_names_the_keys(tmp_path):
    save_settings(tmp_path, {"label.preference": "dataset", "grm.openai.model": "a"})
    check_settings(tmp_path, {"label.preference": "dataset", "grm.openai.model": "a"})
    with pytest.raises(SettingsMismatch) as err:
        check_settings(tmp_path, {"label.preference": "teacher", "grm.openai.model": "b"})
    text = str(err.value)
    assert "grm.openai.model='a' (now 'b')" in text
    assert "label.preference='dataset' (now 'teacher')" in text
    assert "label.output_dir" in text


def _cfg(tmp_path, *overrides):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [pair("p1", "yes", "no")])
    return load_config(
        [
            "grm=openai",
            "cluster.pools.grm.engines=0",
            f"label.pairs_path={pairs}",
            f"label.output_dir={tmp_path / 'out'}",
            *overrides,
        ]
    )


def test_plan_refuses_a_folder_labelled_by_another_teacher(tmp_path):
    first = _cfg(tmp_path, "grm.openai.base_url=http://a:1/v1")
    save_settings(tmp_path / "out", teacher_settings(first))
    plan_label(first)  # same settings: continues
    with pytest.raises(SettingsMismatch, match=r"grm.openai.base_url='http://a:1/v1'"):
        plan_label(_cfg(tmp_path, "grm.openai.base_url=http://b:1/v1"))


def test_plan_names_records_without_answers(tmp_path):
    pairs = write_jsonl(
        tmp_path / "p.jsonl",
        [pair("p1", "yes", "no"), {"id": "p2", "persona": {"a": 1}, "question": "Q?"}],
    )
    cfg = _cfg(tmp_path, f"label.pairs_path={pairs}")
    with pytest.raises(ValueError, match=r"p.jsonl'.*1 of 2 records lack.*'p2'.*sample_answers"):
        plan_label(cfg)


def test_plan_needs_a_pairs_path(tmp_path):
    cfg = _cfg(tmp_path, "label.pairs_path=null")
    with pytest.raises(ValueError, match=r"^label.pairs_path: is not set"):
        plan_label(cfg)


def test_plan_reports_a_broken_labels_file(tmp_path):
    cfg = _cfg(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / LABELS_FILE).write_text("not json\n")
    with pytest.raises(ValueError, match=r"labels.jsonl:1: not a JSON line"):
        plan_label(cfg)
