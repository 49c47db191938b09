from __future__ import annotations

from pathlib import Path

import pytest

from cpe.prompts import (
    BUILTIN_ROOT,
    DEFAULT,
    TEMPLATE_NAMES,
    PromptSet,
    builtin_sets,
    grm_messages,
    policy_messages,
)


def test_builtin_default_has_every_template():
    assert "default" in builtin_sets()
    assert PromptSet.load("default") == DEFAULT
    for role in TEMPLATE_NAMES:
        assert (BUILTIN_ROOT / "default" / f"{role}.jinja").is_file()


def test_override_single_template_by_path(tmp_path, record):
    rubric = tmp_path / "my_rubric.jinja"
    rubric.write_text("RUBRIC for {{ question }} :: {{ answer }}\n")
    prompts = PromptSet.load("default", grm=str(rubric), judge=None)
    assert prompts.path("grm") == rubric.resolve()
    assert prompts.path("policy_user") == DEFAULT.path("policy_user")
    content = grm_messages(record, "ANS", prompts)[0]["content"]
    assert content == "RUBRIC for How can I sleep better after a night shift? :: ANS"
    # the other templates are untouched
    assert policy_messages(record, prompts) == policy_messages(record)
    assert DEFAULT.with_overrides(grm=rubric) == prompts


def test_load_directory_and_from_config(tmp_path, record):
    folder = tmp_path / "mine"
    folder.mkdir()
    for role in TEMPLATE_NAMES:
        (folder / f"{role}.jinja").write_text(f"{role.upper()} {{{{ question }}}}\n")
    prompts = PromptSet.load(folder)
    assert prompts.template_dir == folder.resolve()
    assert policy_messages(record, prompts) == [
        {"role": "system", "content": "POLICY_SYSTEM How can I sleep better after a night shift?"},
        {"role": "user", "content": "POLICY_USER How can I sleep better after a night shift?"},
    ]
    assert PromptSet.from_config({"set": str(folder), "grm": None}) == prompts
    assert PromptSet.from_config(None) is DEFAULT
    assert PromptSet.from_config("default") == DEFAULT


def test_missing_override_file_names_it_and_lists_available(tmp_path):
    missing = tmp_path / "nope.jinja"
    (tmp_path / "other.jinja").write_text("x")
    with pytest.raises(FileNotFoundError) as info:
        PromptSet.load("default", grm=str(missing))
    message = str(info.value)
    assert str(missing) in message and "'grm'" in message
    assert "other.jinja" in message and "grm.jinja" in message  # both folders listed


def test_incomplete_directory_names_missing_file(tmp_path):
    (tmp_path / "grm.jinja").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"policy_system\.jinja.*available.*grm\.jinja"):
        PromptSet.load(tmp_path)


def test_unknown_set_and_unknown_role(tmp_path):
    with pytest.raises(FileNotFoundError, match="default"):
        PromptSet.load("no_such_set")
    with pytest.raises(KeyError, match="grm"):
        PromptSet.load("default", gmr=str(tmp_path / "x.jinja"))
    with pytest.raises(KeyError, match="known roles"):
        DEFAULT.path("rubric")


def test_strict_undefined_catches_typo(tmp_path, record):
    import jinja2

    bad = tmp_path / "bad.jinja"
    bad.write_text("Question: {{ questoin }}\n")
    prompts = PromptSet.load("default", policy_user=bad)
    with pytest.raises(jinja2.UndefinedError, match="questoin"):
        policy_messages(record, prompts)


def test_templates_edited_on_disk_are_reloaded(tmp_path, record):
    path = tmp_path / "grm.jinja"
    path.write_text("one {{ answer }}")
    prompts = PromptSet.load("default", grm=path)
    assert grm_messages(record, "A", prompts)[0]["content"] == "one A"
    path.write_text("two {{ answer }} and more")
    import os

    os.utime(path, (1, 1))  # force a different mtime even on coarse clocks
    assert grm_messages(record, "A", prompts)[0]["content"] == "two A and more"


def test_templates_are_package_data():
    # pyproject's package-data "*" = ["*.jinja"] covers the namespace package
    # cpe.prompts.templates.default found by packages.find (namespaces on by default).
    root = Path(__file__).resolve().parents[3] / "cpe" / "prompts" / "templates" / "default"
    assert sorted(p.stem for p in root.glob("*.jinja")) == sorted(TEMPLATE_NAMES)
