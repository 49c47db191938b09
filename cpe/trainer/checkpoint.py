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
import logging
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
log = logging.getLogger(__name__)


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
        try:
            self._prune(step)
        except OSError as exc:  # the new checkpoint is sealed: a failed clean-up is not fatal
            log.warning("checkpoint step %d is written; pruning older ones failed: %s", step, exc)
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

    def _prune(self, newest: int) -> None:
        """Keep checkpoint ``newest`` (the one just written) and the ``keep - 1`` highest
        steps below it; remove leftovers of interrupted writes and deletes. Steps above it
        belong to the run this one was resumed away from (an older folder given to
        ``trainer.resume``): kept, ``resume=auto`` would go back to them."""
        done = self.complete()
        abandoned = [path for s, path in done if s > newest]
        if abandoned:
            log.warning("checkpoint step %d replaces the later %s", newest, abandoned)
        older = [path for s, path in done if s < newest]
        for path in abandoned + older[: max(0, len(older) - (self.keep - 1))]:
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
    files = _state_files(folder)
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
    try:
        entries = json.loads(manifest.read_text())["files"]
        sizes = {name: (int(e["bytes"]), str(e["sha256"])) for name, e in entries.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{manifest} is malformed ({exc!r}); refusing to load") from None
    present = {str(p.relative_to(folder)) for p in _state_files(folder)}
    if extra := sorted(present - set(entries)):
        raise CheckpointError(f"{folder}: {extra[0]} is not in {MANIFEST}; refusing to load")
    for name, (size, digest) in sizes.items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"{folder}: {name} is listed in {MANIFEST} but missing")
        if path.stat().st_size != size or _sha256(path) != digest:
            raise CheckpointError(
                f"{folder}: {name} differs from what cpe wrote ({MANIFEST}); refusing to load"
            )


def _state_files(folder: Path) -> list[Path]:
    """Every file the manifest covers: all but the manifest itself and the marker."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (MARKER, MANIFEST))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _root_cause(exc: BaseException) -> str:
    """The innermost error's one-line text (a learner's OSError inside Ray's task error)."""
    for _ in range(16):  # a chain, not a cycle, but never loop on a malformed one
        if type(exc).__module__.startswith("cpe."):
            break  # cpe's own errors (LearnerDied) already say what happened
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
