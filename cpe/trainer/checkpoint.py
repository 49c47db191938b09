"""Checkpoint folders: written under a temporary name, hashed, made durable, marked
complete last, renamed.

A crash mid-write leaves ``step_N.partial`` (ignored and cleaned up later), never a
folder that looks complete. Layout of ``<run_dir>/checkpoints/step_000010/``::

    policy_hf/      the policy in Hugging Face format (transformers / vLLM loadable)
    policy_state/   DeepSpeed state of the policy ranks (weights, optimizer, lr schedule)
    value_state/    the same for the value ranks
    driver.json     step, data cursor, RNG states
    MANIFEST.json   size and sha256 of every file above
    COMPLETE        written last

DeepSpeed's state files are pickles, and unpickling runs code: a resume loads only a
folder whose every file matches the manifest cpe wrote, so a file swapped or damaged
after the save is refused before anything reads it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cpe.durable import fsync_tree, rename_durably, write_text_durably

_STEP_DIR = re.compile(r"^step_(\d{6,})$")
MARKER = "COMPLETE"
MANIFEST = "MANIFEST.json"
#: Suffixes of folders that are not checkpoints: being written, or being deleted.
PARTIAL, DELETED = ".partial", ".deleted"
_HASH_CHUNK = 1 << 22


class CheckpointError(RuntimeError):
    """A checkpoint that could not be written, or one that must not be loaded."""


class CheckpointManager:
    def __init__(self, run_dir: str | Path, keep: int = 2):
        # Absolute: learner ranks write their shards here from their own working dirs.
        self.root = Path(run_dir).resolve() / "checkpoints"
        self.keep = keep

    @contextmanager
    def writing(self, step: int, driver_state: dict[str, Any]) -> Iterator[Path]:
        """The folder to write checkpoint ``step`` into; committed when the block ends.
        Any failure (a full disk, a dead learner) removes the partial folder and raises
        :class:`CheckpointError` naming the newest complete checkpoint, left untouched."""
        tmp = self.begin(step)
        try:
            yield tmp
            self.commit(tmp, step, driver_state)
        except Exception as exc:
            # torch's writer reports a full disk as "unexpected pos", not ENOSPC: the free
            # space, taken before the partial is removed, says it plainly.
            free_mb = shutil.disk_usage(self.root).free / 2**20
            shutil.rmtree(tmp, ignore_errors=True)
            latest = self.latest()
            kept = (
                f"the newest complete checkpoint, {latest}, is intact"
                if latest
                else ("there is no earlier complete checkpoint")
            )
            raise CheckpointError(
                f"checkpoint step {step} could not be written under {self.root} "
                f"({free_mb:.1f} MB free on its disk then): {_root_cause(exc)}; {kept}"
            ) from exc

    def begin(self, step: int) -> Path:
        """A fresh temporary folder to write checkpoint ``step`` into."""
        tmp = self.root / f"step_{step:06d}{PARTIAL}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        return tmp

    def commit(self, tmp: Path, step: int, driver_state: dict[str, Any]) -> Path:
        """Seal ``tmp`` as checkpoint ``step``: every byte on disk before the marker, the
        marker before the rename, the rename before older checkpoints are pruned."""
        (tmp / "driver.json").write_text(json.dumps(driver_state, indent=1))
        write_manifest(tmp)
        fsync_tree(tmp)
        write_text_durably(tmp / MARKER, str(step))
        final = self.root / f"step_{step:06d}"
        if final.exists():  # a resume from an older checkpoint saves this step again
            self._delete(final)
        rename_durably(tmp, final)
        self._prune(final)
        return final

    def complete(self) -> list[tuple[int, Path]]:
        if not self.root.exists():
            return []
        found = []
        for child in self.root.iterdir():
            match = _STEP_DIR.match(child.name)
            if match and (child / MARKER).exists():
                found.append((int(match.group(1)), child))
        return sorted(found)

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1][1] if done else None

    def _prune(self, newest: Path) -> None:
        """Keep ``newest`` (the one just written, whatever its step) and the ``keep - 1``
        highest-step others; remove leftovers of interrupted writes and deletes."""
        others = [path for _, path in self.complete() if path != newest]
        for path in others[: max(0, len(others) - (self.keep - 1))]:
            self._delete(path)
        for stale in [*self.root.glob(f"*{PARTIAL}"), *self.root.glob(f"*{DELETED}")]:
            shutil.rmtree(stale, ignore_errors=True)

    def _delete(self, path: Path) -> None:
        # Renamed first: a crash mid-delete must not leave a half-deleted folder that
        # still has its COMPLETE marker.
        doomed = path.with_name(path.name + DELETED)
        shutil.rmtree(doomed, ignore_errors=True)
        rename_durably(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def write_manifest(folder: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MARKER)
    with ThreadPoolExecutor(max_workers=4) as pool:  # hashlib releases the GIL
        digests = list(pool.map(_sha256, files))
    entries = {
        str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": d}
        for p, d in zip(files, digests, strict=True)
    }
    write_text_durably(folder / MANIFEST, json.dumps({"files": entries}, indent=1))


def verify_manifest(folder: Path) -> None:
    """Raise :class:`CheckpointError` unless every file in ``folder`` is one cpe wrote,
    byte for byte."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise CheckpointError(
            f"{folder} has no {MANIFEST}: not a checkpoint this version of cpe wrote, so it "
            "is not loaded (its pickled state could run code)"
        )
    entries = json.loads(manifest.read_text())["files"]
    present = {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and p.name not in (MARKER, MANIFEST)
    }
    if extra := sorted(present - set(entries)):
        raise CheckpointError(f"{folder}: {extra[0]} is not in {MANIFEST}; refusing to load")
    for name, entry in entries.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{folder}: {name} is listed in {MANIFEST} but missing")
        if path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
            raise CheckpointError(
                f"{folder}: {name} differs from what cpe wrote ({MANIFEST}); refusing to load"
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _root_cause(exc: BaseException) -> str:
    """The innermost error's one-line text (a learner's OSError inside Ray's task error)."""
    for _ in range(16):  # a chain, not a cycle, but never loop on a malformed one
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".rstrip(": ")


def read_driver_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / "driver.json").read_text())


def resolve_resume(resume: str, manager: CheckpointManager) -> Path | None:
    """``auto``: the newest complete checkpoint, if any; ``never``; or an explicit folder.
    A checkpoint is returned only once its manifest checks out."""
    if resume == "never":
        return None
    if resume == "auto":
        path = manager.latest()
        if path is None:
            return None
    else:
        path = Path(resume)
        if not (path / MARKER).exists():
            raise FileNotFoundError(
                f"trainer.resume={resume!r} is not a complete checkpoint (no {MARKER} file)"
            )
    verify_manifest(path)
    return path
