"""Writes that survive a crash or a power cut: fsync the data, then the folder entry.

A rename is atomic but not durable until the parent folder is fsynced, and a file's
bytes are not on disk until the file is; without both, a machine that dies right after
a checkpoint "completed" can come back with an empty or missing file under a
complete-looking name. The standard library has the primitives but no helper.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: str | Path) -> None:
    """Flush ``path``'s bytes to disk (whichever process wrote them on this node)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Flush ``path``'s entries (names created, renamed or removed in it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str | Path) -> None:
    """Every file under ``root``, then every folder, deepest first."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            fsync_file(Path(folder) / name)
        fsync_dir(folder)


def write_text_durably(path: str | Path, text: str) -> None:
    """``path`` holds ``text`` or, after a crash, its old content: never a torn file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)


def rename_durably(src: Path, dst: Path) -> None:
    """``src`` -> ``dst`` (atomic on one filesystem), durable once this returns."""
    src.rename(dst)
    fsync_dir(dst.parent)
