"""Plots and report.html of two synthetic runs."""

from __future__ import annotations

import re

import pytest

from cpe.report.cli import main

pytestmark = pytest.mark.unit

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALWAYS = [
    "reward.png",
    "score_helpfulness.png",
    "score_personalization.png",
    "score_naturalness.png",
    "length_tokens.png",
    "grm_invalid.png",
    "selected_edits.png",
    "eval_win_rate.png",
    "timings_cpe-run.png",
    "timings_ppo-run.png",
]


def test_plots_exist_and_are_pngs(cpe_run, ppo_run, tmp_path):
    out = tmp_path / "out"
    assert main([str(cpe_run), str(ppo_run), "--out", str(out), "--quiet"]) == 0
    for name in ALWAYS:
        assert (out / name).read_bytes().startswith(PNG_MAGIC), name


def test_plots_without_keys_are_skipped(ppo_run, capsys):
    assert main([str(ppo_run), "--quiet"]) == 0
    out = ppo_run / "report"
    assert (out / "reward.png").read_bytes().startswith(PNG_MAGIC)
    for name in ("selected_edits.png", "eval_win_rate.png"):
        assert not (out / name).exists(), name
    written = capsys.readouterr().out
    assert "eval_win_rate.png" not in written and f"wrote {out / 'report.html'}" in written


def test_html_compares_configs_and_embeds_everything(cpe_run, ppo_run, tmp_path):
    out = tmp_path / "out"
    assert main([str(cpe_run), str(ppo_run), "--out", str(out), "--quiet"]) == 0
    page = (out / "report.html").read_text()
    assert "<td>algorithm.mode</td><td>cpe</td><td>ppo</td>" in page
    assert "algorithm.gamma" not in page and "trainer.total_steps" not in page
    assert page.count("src='data:image/png;base64,") == len(ALWAYS)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?:|url\(\s*["']?https?:|@import""", page)
    assert "<script" not in page and "<link" not in page


def test_html_has_eval_tables_escaped(cpe_run, tmp_path):
    out = tmp_path / "out"
    assert main([str(cpe_run), "--out", str(out), "--quiet"]) == 0
    page = (out / "report.html").read_text()
    for value in ("55.5", "3.1", "52.25", "120.5", "7.75", "novel_key", "bundled:eval"):
        assert value in page, value
    assert "&lt;initial&gt;" in page and "<initial>" not in page
    assert "nested" not in page  # only scalar keys become columns
    # a single run shows key settings rather than differences
    assert "Settings" in page and "trainer.eval_every" in page
    # the eval metric logged at step 2 only is shown with its step
    assert "61.5 (step 2)" in page


def test_broken_results_json_is_skipped(cpe_run, tmp_path, capsys):
    bad = cpe_run / "eval" / "y" / "results.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    assert main([str(cpe_run), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert f"warning: skipping {bad}" in capsys.readouterr().err
