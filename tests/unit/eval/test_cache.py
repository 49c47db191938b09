import json

import pytest

from cpe.eval.cache import CacheMismatch, JsonlCache

pytestmark = pytest.mark.unit


def test_rows_survive_a_reopen_and_a_cut_last_line_is_dropped(tmp_path):
    path = tmp_path / "answers" / "p.jsonl"
    cache = JsonlCache(path, {"temperature": 0.8}, ("id", "variant"))
    cache.add([{"id": "a", "variant": "default", "answer": "x"}])
    with path.open("a") as fh:  # a kill mid-write
        fh.write('{"id": "b", "variant": "def')
    again = JsonlCache(path, {"temperature": 0.8}, ("id", "variant"))
    assert ("a", "default") in again and len(again) == 1
    again.add([{"id": "b", "variant": "default", "answer": "y"}])
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]


def test_other_settings_are_refused_naming_the_setting(tmp_path):
    path = tmp_path / "p.jsonl"
    JsonlCache(path, {"temperature": 0.8, "model": "m"}, ("id",))
    with pytest.raises(CacheMismatch, match=r"temperature=0.8.*not 0.0.*eval.output_dir"):
        JsonlCache(path, {"temperature": 0.0, "model": "m"}, ("id",))
