"""A run folder as a killed run leaves it, and a byte-and-mtime snapshot of a folder: what
the bad-input tests compare to show a failed start damaged nothing already written."""

from __future__ import annotations

from pathlib import Path


def existing_run(run: Path, with_config: bool = False) -> Path:
    """Metrics, samples and a complete checkpoint (and its ``config.yaml`` when asked)
    in ``run``; a folder that exists already is left as it is."""
    if run.exists():
        return run
    (run / "samples").mkdir(parents=True)
    (run / "checkpoints" / "step_2").mkdir(parents=True)
    if with_config:
        (run / "config.yaml").write_text("name: tiny_cpu\n")
    (run / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    (run / "samples" / "step_2.jsonl").write_text('{"question": "q"}\n')
    (run / "checkpoints" / "step_2" / "COMPLETE").write_text("")
    (run / "checkpoints" / "step_2" / "driver.json").write_text('{"step": 2}')
    return run


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
